// The Conversations API's store: the conversation and its items, lookups that tell a missing
// conversation from a missing item, the history a response counts, and the three bounds.
#include "tests/mock_aoai/conversations_store.h"

#include <boost/json/value.hpp>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace spillway::mock {
namespace {

ConversationInfo Info(const std::string& id) {
  ConversationInfo info;
  info.id = id;
  info.created_at = 1'700'000'000;
  return info;
}

ConversationItem Item(const std::string& id, const std::string& text) {
  return MakeConversationItem(boost::json::object{{"id", id}, {"text", text}}, text);
}

std::vector<std::string> Ids(ConversationsStore& store, const std::string& conversation) {
  std::vector<std::string> ids;
  const std::optional<boost::json::array> items = store.Items(conversation);  // kept alive
  for (const boost::json::value& item : *items) {
    ids.emplace_back(item.at("id").as_string());
  }
  return ids;
}

TEST(ConversationsStoreTest, CreateGetUpdateDelete) {
  ConversationsStore store(10, 10, 1 << 20);
  ConversationInfo info = Info("conv_a");
  info.metadata = boost::json::object{{"k", "v"}};
  store.Create(info, {Item("msg_1", "one")});
  ASSERT_TRUE(store.Get("conv_a").has_value());
  EXPECT_EQ(store.Get("conv_a")->metadata, info.metadata);
  EXPECT_EQ(store.Get("conv_a")->created_at, 1'700'000'000);
  EXPECT_FALSE(store.Get("conv_b").has_value());

  const std::optional<ConversationInfo> updated =
      store.UpdateMetadata("conv_a", boost::json::object{{"x", "y"}});
  ASSERT_TRUE(updated.has_value());
  EXPECT_EQ(updated->metadata, (boost::json::object{{"x", "y"}}));
  EXPECT_FALSE(store.UpdateMetadata("conv_b", {}).has_value());

  EXPECT_EQ(store.size(), 1u);
  EXPECT_TRUE(store.Delete("conv_a"));
  EXPECT_FALSE(store.Delete("conv_a"));
  EXPECT_FALSE(store.Get("conv_a").has_value());
  EXPECT_FALSE(store.Items("conv_a").has_value());
  EXPECT_EQ(store.size(), 0u);
}

TEST(ConversationsStoreTest, ItemsAppendLookUpAndDelete) {
  ConversationsStore store(10, 10, 1 << 20);
  store.Create(Info("conv_a"), {Item("msg_1", "one")});
  EXPECT_TRUE(store.Append("conv_a", {Item("msg_2", "two"), Item("msg_3", "three")}));
  EXPECT_FALSE(store.Append("conv_b", {Item("msg_4", "four")}));
  EXPECT_EQ(Ids(store, "conv_a"), (std::vector<std::string>{"msg_1", "msg_2", "msg_3"}));

  boost::json::object item;
  EXPECT_EQ(store.GetItem("conv_a", "msg_2", &item), ConversationsStore::Lookup::kFound);
  EXPECT_EQ(item.at("text").as_string(), "two");
  EXPECT_EQ(store.GetItem("conv_a", "msg_9", &item), ConversationsStore::Lookup::kNoItem);
  EXPECT_EQ(store.GetItem("conv_b", "msg_2", &item), ConversationsStore::Lookup::kNoConversation);

  ConversationInfo info;
  EXPECT_EQ(store.DeleteItem("conv_a", "msg_2", &info), ConversationsStore::Lookup::kFound);
  EXPECT_EQ(info.id, "conv_a");
  EXPECT_EQ(store.DeleteItem("conv_a", "msg_2", &info), ConversationsStore::Lookup::kNoItem);
  EXPECT_EQ(store.DeleteItem("conv_b", "msg_1", &info),
            ConversationsStore::Lookup::kNoConversation);
  EXPECT_EQ(Ids(store, "conv_a"), (std::vector<std::string>{"msg_1", "msg_3"}));
}

TEST(ConversationsStoreTest, HistoryCountsEveryItemAndChangesWithThem) {
  ConversationsStore store(10, 10, 1 << 20);
  store.Create(Info("conv_a"), {});
  const ConversationHistory empty = *store.History("conv_a");
  EXPECT_EQ(empty.tokens, 0);
  // "abcdefgh" is 2 tokens; an output item weighs the tokens generated.
  store.Append("conv_a", {Item("msg_1", "abcdefgh"),
                          MakeOutputItem(boost::json::object{{"id", "msg_2"}}, 10)});
  const ConversationHistory two = *store.History("conv_a");
  EXPECT_EQ(two.tokens, 12);
  EXPECT_NE(two.hash, empty.hash);
  // The same items in another conversation hash the same: the prompt cache can hit.
  store.Create(Info("conv_b"), {Item("msg_3", "abcdefgh")});
  store.Append("conv_b", {MakeOutputItem(boost::json::object{{"id", "msg_4"}}, 10)});
  EXPECT_EQ(store.History("conv_b")->hash, two.hash);
  ConversationInfo info;
  store.DeleteItem("conv_a", "msg_2", &info);
  EXPECT_EQ(store.History("conv_a")->tokens, 2);
  EXPECT_FALSE(store.History("conv_c").has_value());
}

TEST(ConversationsStoreTest, OldestConversationsAreEvictedPastTheCount) {
  ConversationsStore store(2, 10, 1 << 20);
  store.Create(Info("conv_a"), {});
  store.Create(Info("conv_b"), {});
  store.Create(Info("conv_c"), {});
  EXPECT_FALSE(store.Get("conv_a").has_value());
  EXPECT_TRUE(store.Get("conv_b").has_value());
  EXPECT_TRUE(store.Get("conv_c").has_value());
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.evicted(), 1u);
  store.Clear();
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.evicted(), 0u);
}

TEST(ConversationsStoreTest, OldestItemsAreDroppedPastTheItemCount) {
  ConversationsStore store(10, 2, 1 << 20);
  store.Create(Info("conv_a"), {Item("msg_1", "a"), Item("msg_2", "b"), Item("msg_3", "c")});
  EXPECT_EQ(Ids(store, "conv_a"), (std::vector<std::string>{"msg_2", "msg_3"}));
  store.Append("conv_a", {Item("msg_4", "d")});
  EXPECT_EQ(Ids(store, "conv_a"), (std::vector<std::string>{"msg_3", "msg_4"}));
  EXPECT_EQ(store.items_evicted(), 2u);
  EXPECT_EQ(store.evicted(), 0u);
}

TEST(ConversationsStoreTest, BytesEvictOtherConversationsFirstThenOldestItems) {
  const std::string big(4000, 'x');
  ConversationsStore store(10, 100, 10'000);
  store.Create(Info("conv_a"), {Item("msg_1", big)});
  store.Create(Info("conv_b"), {Item("msg_2", big)});
  // conv_b growing past the bound pushes out conv_a, the oldest other one.
  store.Append("conv_b", {Item("msg_3", big)});
  EXPECT_FALSE(store.Get("conv_a").has_value());
  EXPECT_EQ(Ids(store, "conv_b"), (std::vector<std::string>{"msg_2", "msg_3"}));
  EXPECT_EQ(store.evicted(), 1u);
  // Alone and still too big, it forgets its own start.
  store.Append("conv_b", {Item("msg_4", big)});
  EXPECT_EQ(Ids(store, "conv_b"), (std::vector<std::string>{"msg_3", "msg_4"}));
  EXPECT_EQ(store.items_evicted(), 1u);
}

}  // namespace
}  // namespace spillway::mock
