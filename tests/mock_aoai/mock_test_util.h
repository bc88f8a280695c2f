// Shared by the mock's integration tests: start the real binary, build request bodies, read
// JSON answers.
#pragma once

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/http_client.h"
#include "tests/support/mock_aoai_process.h"

namespace spillway::mock {

inline constexpr char kApiVersion[] = "2024-10-21";

inline std::string ChatPath(absl::string_view deployment) {
  return absl::StrCat("/openai/deployments/", deployment,
                      "/chat/completions?api-version=", kApiVersion);
}

inline std::string DeploymentPath(absl::string_view deployment, absl::string_view operation) {
  return absl::StrCat("/openai/deployments/", deployment, "/", operation,
                      "?api-version=", kApiVersion);
}

// A one-message chat body; `extra` is spliced in as more top-level fields.
inline std::string ChatBody(absl::string_view content, absl::string_view extra = "") {
  return absl::StrCat(R"({"messages":[{"role":"user","content":")", content, R"("}])",
                      extra.empty() ? "" : ",", extra, "}");
}

// Parses or fails the test (returns null then).
inline boost::json::value Json(absl::string_view text) {
  boost::system::error_code ec;
  boost::json::value value =
      boost::json::parse(boost::json::string_view(text.data(), text.size()), ec);
  EXPECT_FALSE(ec) << "not JSON: " << text;
  return value;
}

inline std::string Str(const boost::json::value& value) {
  return value.is_string() ? std::string(value.get_string()) : std::string();
}

// The mock with `args`, or a fatal test failure.
inline std::unique_ptr<test::MockAoaiProcess> StartMock(const std::vector<std::string>& args) {
  absl::StatusOr<std::unique_ptr<test::MockAoaiProcess>> mock = test::MockAoaiProcess::Start(args);
  EXPECT_TRUE(mock.ok()) << mock.status();
  return mock.ok() ? *std::move(mock) : nullptr;
}

#define SPILLWAY_START_MOCK(var, ...)                                    \
  std::unique_ptr<::spillway::test::MockAoaiProcess> var =               \
      ::spillway::mock::StartMock(std::vector<std::string> __VA_ARGS__); \
  ASSERT_NE(var, nullptr)

inline test::HttpClient Client(const test::MockAoaiProcess& mock) {
  return test::HttpClient("127.0.0.1", mock.port());
}

// Sends and requires a response (any status).
inline test::HttpResponse MustSend(test::HttpClient& client, absl::string_view method,
                                   absl::string_view target, absl::string_view body = "",
                                   const test::HttpHeaders& headers = {}) {
  absl::StatusOr<test::HttpResponse> response = client.Send(method, target, headers, body);
  EXPECT_TRUE(response.ok()) << response.status();
  return response.ok() ? *std::move(response) : test::HttpResponse{};
}

}  // namespace spillway::mock
