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

// The head a backend gets: the client's headers less its credentials and framing, then the
// backend's Host, the backend's credential (one: an earlier attempt's is replaced) and the
// body's length, or chunked for an upload of unknown length.
TEST(ForwardedHeaders, TheUpstreamHeadCarriesTheBackendsHostCredentialAndFraming) {
  RequestFields client;
  client.insert("Host", "agent.local");
  client.insert("api-key", "the tenant's key");
  client.insert("Authorization", "Bearer the tenant's token");
  client.insert("Content-Type", "application/json");
  client.insert("Content-Length", "99");
  client.insert("Connection", "keep-alive");
  client.insert("x-ms-client-request-id", "r1");
  UpstreamRequest own;
  own.method = "POST";
  own.target.assign("/openai/deployments/gpt-4o/chat/completions?api-version=1");
  own.host = "resource.openai.azure.com";
  own.SetCredential("Authorization", "Bearer an earlier backend's token");
  own.SetCredential("api-key", "backend-key");
  own.content_length = 2;
  std::string head;
  WriteUpstreamHead(own, client, head);
  EXPECT_EQ(head,
            "POST /openai/deployments/gpt-4o/chat/completions?api-version=1 HTTP/1.1\r\n"
            "Content-Type: application/json\r\n"
            "x-ms-client-request-id: r1\r\n"
            "Host: resource.openai.azure.com\r\n"
            "api-key: backend-key\r\n"
            "Content-Length: 2\r\n"
            "\r\n");

  own.ClearCredential();
  own.content_length.reset();
  own.chunked = true;
  WriteUpstreamHead(own, client, head);
  EXPECT_EQ(head.substr(head.find("Host:")),
            "Host: resource.openai.azure.com\r\nTransfer-Encoding: chunked\r\n\r\n");
}

}  // namespace
}  // namespace spillway
