// The Batch and Vector stores APIs against the real binary: two mocks are two Azure resources,
// so a file of one is unknown to the other; request counts from the input's lines; the
// validating -> in_progress -> completed and cancel lifecycles; vector stores, their files and
// file batches; both surfaces.
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/mock_files_test_util.h"

namespace spillway::mock {
namespace {

using ::testing::HasSubstr;

constexpr char kFiles[] = "/openai/v1/files";
constexpr char kBatches[] = "/openai/v1/batches";
constexpr char kStores[] = "/openai/v1/vector_stores";
constexpr char kJsonl[] =
    "{\"custom_id\":\"1\",\"method\":\"POST\",\"url\":\"/chat/completions\",\"body\":{}}\n"
    "{\"custom_id\":\"2\",\"method\":\"POST\",\"url\":\"/chat/completions\",\"body\":{}}\n\n"
    "{\"custom_id\":\"3\",\"method\":\"POST\",\"url\":\"/chat/completions\",\"body\":{}}";

std::string BatchBody(absl::string_view file_id) {
  return absl::StrCat(R"({"input_file_id":")", file_id,
                      R"(","endpoint":"/chat/completions","completion_window":"24h"})");
}

TEST(MockBatchesTest, InputFileMustBeThisResources) {
  SPILLWAY_START_MOCK(a, {"--batch-ms=0"});
  SPILLWAY_START_MOCK(b, {"--batch-ms=0"});
  test::HttpClient on_a = Client(*a);
  test::HttpClient on_b = Client(*b);
  const std::string file = UploadFile(on_a, kFiles, "batch", kJsonl);
  ASSERT_FALSE(file.empty());

  const test::HttpResponse elsewhere = MustSend(on_b, "POST", kBatches, BatchBody(file));
  EXPECT_EQ(elsewhere.status, 404) << elsewhere.body;
  EXPECT_EQ(elsewhere.body,
            OpenAiNotFound(absl::StrCat("No such File object: ", file), "input_file_id"));

  const test::HttpResponse created = MustSend(on_a, "POST", kBatches, BatchBody(file));
  ASSERT_EQ(created.status, 200) << created.body;
  const boost::json::value batch = Json(created.body);
  const std::string id = Str(batch.at("id"));
  EXPECT_TRUE(std::regex_match(id, std::regex("batch_[0-9a-f]{32}"))) << id;
  EXPECT_EQ(Str(batch.at("object")), "batch");
  EXPECT_EQ(Str(batch.at("status")), "validating");
  EXPECT_EQ(Str(batch.at("input_file_id")), file);
  EXPECT_EQ(Str(batch.at("endpoint")), "/chat/completions");
  EXPECT_EQ(Str(batch.at("completion_window")), "24h");
  EXPECT_EQ(batch.at("request_counts"), Json(R"({"total":3,"completed":0,"failed":0})"));

  const boost::json::value later =
      Json(MustSend(on_a, "GET", absl::StrCat(kBatches, "/", id)).body);
  EXPECT_EQ(Str(later.at("status")), "completed");
  EXPECT_EQ(later.at("request_counts"), Json(R"({"total":3,"completed":3,"failed":0})"));
  EXPECT_TRUE(later.at("completed_at").is_int64());
  EXPECT_EQ(MustSend(on_b, "GET", absl::StrCat(kBatches, "/", id)).status, 404);

  const boost::json::value list = Json(MustSend(on_a, "GET", kBatches).body);
  ASSERT_EQ(list.at("data").as_array().size(), 1u);
  EXPECT_EQ(Str(list.at("data").at(0).at("id")), id);
  const test::HttpResponse cancel =
      MustSend(on_a, "POST", absl::StrCat(kBatches, "/", id, "/cancel"));
  EXPECT_EQ(cancel.status, 400);
  EXPECT_THAT(cancel.body, HasSubstr("Cannot cancel a batch with status 'completed'."));
  EXPECT_EQ(MockStats(*a).at("batches").at("stored").as_int64(), 1);
}

TEST(MockBatchesTest, DatedSurfaceCancelAndValidation) {
  SPILLWAY_START_MOCK(mock, {"--batch-ms=60000"});
  test::HttpClient client = Client(*mock);
  const std::string version = absl::StrCat("?api-version=", kApiVersion);
  const std::string file =
      UploadFile(client, absl::StrCat("/openai/files", version), "batch", kJsonl);
  const test::HttpResponse created =
      MustSend(client, "POST", absl::StrCat("/openai/batches", version), BatchBody(file));
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string id = Str(Json(created.body).at("id"));
  const std::string path = absl::StrCat("/openai/batches/", id);
  EXPECT_EQ(Str(Json(MustSend(client, "GET", absl::StrCat(path, version)).body).at("status")),
            "in_progress");
  const test::HttpResponse cancel =
      MustSend(client, "POST", absl::StrCat(path, "/cancel", version));
  ASSERT_EQ(cancel.status, 200) << cancel.body;
  EXPECT_EQ(Str(Json(cancel.body).at("status")), "cancelling");
  const boost::json::value cancelled =
      Json(MustSend(client, "GET", absl::StrCat(path, version)).body);
  EXPECT_EQ(Str(cancelled.at("status")), "cancelled");
  EXPECT_TRUE(cancelled.at("cancelled_at").is_int64());
  EXPECT_EQ(MustSend(client, "GET", path).status, 404);  // no api-version

  const std::string assistants = UploadFile(client, kFiles, "assistants", kJsonl);
  const test::HttpResponse wrong_purpose =
      MustSend(client, "POST", kBatches, BatchBody(assistants));
  EXPECT_EQ(wrong_purpose.status, 400);
  EXPECT_THAT(wrong_purpose.body, HasSubstr("purpose 'batch'"));
  EXPECT_EQ(MustSend(client, "POST", kBatches, R"({"input_file_id":"x"})").status, 400);
  EXPECT_EQ(MustSend(client, "POST", kBatches,
                     absl::StrCat(R"({"input_file_id":")", file,
                                  R"(","endpoint":"/chat/completions","completion_window":"1h"})"))
                .status,
            400);
  EXPECT_EQ(MustSend(client, "POST", kBatches, "not json").status, 400);
  const test::HttpResponse unknown = MustSend(client, "GET", absl::StrCat(kBatches, "/batch_0"));
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body, OpenAiNotFound("Batch with id 'batch_0' not found."));
}

TEST(MockVectorStoresTest, FilesMustBeThisResources) {
  SPILLWAY_START_MOCK(a, {});
  SPILLWAY_START_MOCK(b, {});
  test::HttpClient on_a = Client(*a);
  test::HttpClient on_b = Client(*b);
  const std::string file = UploadFile(on_a, kFiles, "assistants", "some text", "notes.txt");
  const std::string body = absl::StrCat(R"({"name":"kb","file_ids":[")", file, R"("]})");
  const test::HttpResponse missing = MustSend(on_b, "POST", kStores, body);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, OpenAiNotFound(absl::StrCat("No such File object: ", file), "file_ids"));

  const test::HttpResponse created = MustSend(on_a, "POST", kStores, body);
  ASSERT_EQ(created.status, 200) << created.body;
  const boost::json::value store = Json(created.body);
  const std::string id = Str(store.at("id"));
  EXPECT_TRUE(std::regex_match(id, std::regex("vs_[A-Za-z0-9]{24}"))) << id;
  EXPECT_EQ(Str(store.at("object")), "vector_store");
  EXPECT_EQ(Str(store.at("name")), "kb");
  EXPECT_EQ(Str(store.at("status")), "completed");
  EXPECT_EQ(store.at("usage_bytes").to_number<int64_t>(), 9);
  EXPECT_EQ(store.at("file_counts").at("completed").as_int64(), 1);
  EXPECT_EQ(store.at("file_counts").at("total").as_int64(), 1);
  EXPECT_EQ(MustSend(on_b, "GET", absl::StrCat(kStores, "/", id)).status, 404);
}

TEST(MockVectorStoresTest, StoreFilesAndFileBatches) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  const std::string version = absl::StrCat("?api-version=", kApiVersion);
  const std::string dated = absl::StrCat("/openai/vector_stores", version);
  const test::HttpResponse created = MustSend(client, "POST", dated, R"({"name":"first"})");
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string id = Str(Json(created.body).at("id"));
  const std::string store = absl::StrCat(kStores, "/", id);

  const test::HttpResponse renamed =
      MustSend(client, "POST", store, R"({"name":"second","metadata":{"k":"v"}})");
  ASSERT_EQ(renamed.status, 200) << renamed.body;
  EXPECT_EQ(Str(Json(renamed.body).at("name")), "second");
  EXPECT_EQ(Json(MustSend(client, "GET", absl::StrCat("/openai/vector_stores/", id, version)).body)
                .at("metadata"),
            Json(R"({"k":"v"})"));
  EXPECT_EQ(Json(MustSend(client, "GET", kStores).body).at("data").as_array().size(), 1u);

  const std::string one = UploadFile(client, kFiles, "assistants", "one");
  const std::string two = UploadFile(client, kFiles, "assistants", "two!");
  const test::HttpResponse added = MustSend(client, "POST", absl::StrCat(store, "/files"),
                                            absl::StrCat(R"({"file_id":")", one, R"("})"));
  ASSERT_EQ(added.status, 200) << added.body;
  EXPECT_EQ(Str(Json(added.body).at("object")), "vector_store.file");
  EXPECT_EQ(Str(Json(added.body).at("vector_store_id")), id);
  EXPECT_EQ(
      MustSend(client, "POST", absl::StrCat(store, "/files"), R"({"file_id":"file-0"})").status,
      404);
  const test::HttpResponse batch = MustSend(client, "POST", absl::StrCat(store, "/file_batches"),
                                            absl::StrCat(R"({"file_ids":[")", two, R"("]})"));
  ASSERT_EQ(batch.status, 200) << batch.body;
  const std::string batch_id = Str(Json(batch.body).at("id"));
  EXPECT_TRUE(std::regex_match(batch_id, std::regex("vsfb_[0-9a-f]{32}"))) << batch_id;
  EXPECT_EQ(Str(Json(batch.body).at("object")), "vector_store.file_batch");
  EXPECT_EQ(Json(MustSend(client, "GET", absl::StrCat(store, "/file_batches/", batch_id)).body),
            Json(batch.body));
  EXPECT_EQ(MustSend(client, "GET", absl::StrCat(store, "/file_batches/vsfb_0")).status, 404);

  const boost::json::value files =
      Json(MustSend(client, "GET", absl::StrCat(store, "/files")).body);
  ASSERT_EQ(files.at("data").as_array().size(), 2u);
  EXPECT_EQ(Json(MustSend(client, "GET", store).body).at("usage_bytes").to_number<int64_t>(), 7);
  EXPECT_EQ(MustSend(client, "GET", absl::StrCat(store, "/files/", one)).status, 200);
  const test::HttpResponse removed =
      MustSend(client, "DELETE", absl::StrCat(store, "/files/", one));
  EXPECT_EQ(
      removed.body,
      absl::StrCat(R"({"id":")", one, R"(","object":"vector_store.file.deleted","deleted":true})"));
  const test::HttpResponse gone = MustSend(client, "GET", absl::StrCat(store, "/files/", one));
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(gone.body, OpenAiNotFound(absl::StrCat("No file found with id '", one,
                                                   "' in vector store '", id, "'.")));

  const test::HttpResponse deleted = MustSend(client, "DELETE", store);
  EXPECT_EQ(deleted.body,
            absl::StrCat(R"({"id":")", id, R"(","object":"vector_store.deleted","deleted":true})"));
  const test::HttpResponse unknown = MustSend(client, "GET", store);
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body,
            OpenAiNotFound(absl::StrCat("No vector store found with id '", id, "'.")));
  EXPECT_EQ(MustSend(client, "POST", kStores, R"({"name":7})").status, 400);
  EXPECT_EQ(MustSend(client, "PUT", kStores).status, 404);
}

}  // namespace
}  // namespace spillway::mock
