// Which client headers go upstream unchanged: never credentials, framing, hop-by-hop headers
// or Expect (the agent holds the whole body; an interim 100 it provokes is an answer too many).
#include <gtest/gtest.h>

#include <boost/beast/http/fields.hpp>

#include "dataplane/proxy/upstream_attempt.h"

namespace spillway {
namespace {

bool Forwarded(absl::string_view name, absl::string_view value = "v") {
  RequestFields fields;
  fields.insert(beast::string_view(name.data(), name.size()),
                beast::string_view(value.data(), value.size()));
  return ForwardedUpstream(*fields.begin());
}

TEST(ForwardedHeaders, AgentOwnedAndHopByHopHeadersStay) {
  for (const char* name : {"Expect", "expect", "api-key", "API-Key", "Authorization", "Host",
                           "Content-Length", "Connection", "Keep-Alive", "Transfer-Encoding", "TE",
                           "Trailer", "Upgrade", "Proxy-Authorization"}) {
    EXPECT_FALSE(Forwarded(name)) << name;
  }
}

TEST(ForwardedHeaders, ApplicationHeadersGo) {
  for (const char* name : {"Content-Type", "Accept", "User-Agent", "x-ms-client-request-id",
                           "OpenAI-Beta", "x-stainless-retry-count"}) {
    EXPECT_TRUE(Forwarded(name)) << name;
  }
}

}  // namespace
}  // namespace spillway
