// Query strings of the operations that name their route there (Realtime) and of browsers that
// can only send their key there: reading a parameter, rewriting the route for a backend with
// the key dropped, and quoting a target without its key.
#include "dataplane/routing/query_params.h"

#include <gtest/gtest.h>

namespace spillway {
namespace {

TEST(QueryParams, ReadsTheFirstParameterPercentDecoded) {
  const char* target = "/openai/realtime?api-version=2025-04-01&deployment=gpt%2D4o&deployment=x";
  EXPECT_EQ(QueryParam(target, "deployment"), "gpt-4o");
  EXPECT_EQ(QueryParam(target, "api-version"), "2025-04-01");
  EXPECT_EQ(QueryParam(target, "model"), std::nullopt);
  EXPECT_EQ(QueryParam("/openai/v1/realtime", "model"), std::nullopt);
  EXPECT_EQ(QueryParam("/p?api-key=a%2Bb+c", "api-key"), "a+b c");
  EXPECT_EQ(QueryParam("/p?api-key=", "api-key"), "");
  EXPECT_EQ(QueryParam("/p?api-key", "api-key"), "");
  EXPECT_EQ(QueryParam("/p?api-key=bad%2", "api-key"), std::nullopt);
  EXPECT_EQ(QueryParam("/p?xapi-key=1&api-keys=2", "api-key"), std::nullopt);
}

TEST(QueryParams, RewritesTheRouteAndDropsTheKeyKeepingTheRest) {
  EXPECT_EQ(RewriteRouteParam("/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-rt"
                              "&api-key=secret&x=1",
                              "deployment", "rt-eus2"),
            "/openai/realtime?api-version=2025-04-01-preview&deployment=rt-eus2&x=1");
  EXPECT_EQ(RewriteRouteParam("/openai/v1/realtime?api-key=s&model=gpt-rt&model=again", "model",
                              "rt deployment"),
            "/openai/v1/realtime?model=rt%20deployment");
  // A target without the parameter gets it (the caller checked the route was named).
  EXPECT_EQ(RewriteRouteParam("/openai/v1/realtime/calls", "model", "d"),
            "/openai/v1/realtime/calls?model=d");
}

TEST(QueryParams, RedactsKeysOnly) {
  EXPECT_EQ(RedactKey("/openai/realtime?deployment=a&api-key=secret&b"),
            "/openai/realtime?deployment=a&api-key=***&b");
  EXPECT_EQ(RedactKey("/openai/realtime"), "/openai/realtime");
  EXPECT_EQ(RedactKey("/x?api-key"), "/x?api-key");
}

}  // namespace
}  // namespace spillway
