// Entra ID token pieces without a token endpoint: the refresh policy, the request each
// credential makes, the parsing of answers, and EntraTokenSource's single flight, waiting,
// backoff and refresh with a fake fetcher on real io_contexts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/json/serialize.hpp>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dataplane/auth/entra_token_fetch.h"
#include "dataplane/auth/entra_token_source.h"

namespace spillway {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ScheduleToken, RefreshesAtTheSmallerOfFiveMinutesOrTenPercent) {
  const SteadyTime t0{};
  // One hour: 10% is 6 minutes, so 5 minutes wins; sending stops 30 s before expiry.
  TokenSchedule hour = ScheduleToken(t0, seconds(3600));
  EXPECT_EQ(hour.refresh_at - t0, seconds(3300));
  EXPECT_EQ(hour.usable_until - t0, seconds(3570));
  // IMDS's 24-hour tokens.
  EXPECT_EQ(ScheduleToken(t0, seconds(86399)).refresh_at - t0, seconds(86099));
  // Short test tokens: 10% and 5%.
  TokenSchedule four = ScheduleToken(t0, seconds(4));
  EXPECT_EQ(four.refresh_at - t0, milliseconds(3600));
  EXPECT_EQ(four.usable_until - t0, milliseconds(3800));
  // Always refreshed before it stops being sent, which is before it expires.
  for (int64_t life : {1, 2, 30, 600, 3000, 3599, 7200}) {
    TokenSchedule s = ScheduleToken(t0, seconds(life));
    EXPECT_LT(s.refresh_at, s.usable_until) << life;
    EXPECT_LT(s.usable_until - t0, seconds(life)) << life;
  }
}

TEST(TokenFetchBackoff, DoublesFromOneSecondToThirty) {
  std::vector<int64_t> waits;
  for (int failures = 1; failures <= 8; ++failures) {
    waits.push_back(TokenFetchBackoff(failures).count());
  }
  EXPECT_THAT(waits, ElementsAre(1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000));
}

TEST(UrlEncode, KeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(UrlEncode("aZ09-._~"), "aZ09-._~");
  EXPECT_EQ(UrlEncode("a b+c/d&e=f%g"), "a%20b%2Bc%2Fd%26e%3Df%25g");
  EXPECT_EQ(UrlEncode("\xC3\xA9"), "%C3%A9");
}

std::string Header(const TokenHttpRequest& request, absl::string_view name) {
  for (const auto& [key, value] : request.headers) {
    if (key == name) {
      return value;
    }
  }
  return "<none>";
}

TEST(BuildTokenRequest, ManagedIdentityAsksImds) {
  EntraCredential system;
  absl::StatusOr<TokenHttpRequest> request = BuildTokenRequest(system, EntraEndpoints{}, "");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->method, http::verb::get);
  EXPECT_EQ(request->origin, "http://169.254.169.254");
  EXPECT_FALSE(request->address.tls);
  EXPECT_EQ(request->target,
            "/metadata/identity/oauth2/token?api-version=2018-02-01&resource="
            "https%3A%2F%2Fcognitiveservices.azure.com");
  EXPECT_EQ(Header(*request, "Metadata"), "true");

  EntraCredential user;
  user.client_id = "11111111-2222-3333-4444-555555555555";
  request = BuildTokenRequest(user, EntraEndpoints{}, "");
  ASSERT_TRUE(request.ok());
  EXPECT_THAT(request->target, HasSubstr("&client_id=11111111-2222-3333-4444-555555555555"));
}

TEST(BuildTokenRequest, AppServiceIdentityEndpointWinsWhenSet) {
  EntraEndpoints endpoints;
  endpoints.identity_endpoint = "http://127.0.0.1:41000/msi/token";
  endpoints.identity_header = "header-secret";
  EntraCredential user;
  user.client_id = "uami";
  absl::StatusOr<TokenHttpRequest> request = BuildTokenRequest(user, endpoints, "");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->origin, "http://127.0.0.1:41000");
  EXPECT_EQ(request->address.port, "41000");
  EXPECT_EQ(request->target,
            "/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fcognitiveservices.azure.com"
            "&client_id=uami");
  EXPECT_EQ(Header(*request, "X-IDENTITY-HEADER"), "header-secret");
  EXPECT_EQ(Header(*request, "Metadata"), "<none>");
  EXPECT_THAT(request->secrets, ::testing::Contains("header-secret"));
}

TEST(BuildTokenRequest, ClientCredentialsPostsAnEncodedForm) {
  EntraEndpoints endpoints;
  endpoints.authority = "https://login.example.com/";
  EntraCredential credential;
  credential.kind = EntraCredential::Kind::kClientCredentials;
  credential.tenant_id = "contoso.onmicrosoft.com";
  credential.client_id = "app id";
  absl::StatusOr<TokenHttpRequest> request =
      BuildTokenRequest(credential, endpoints, "p&ss=w+rd/~");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->method, http::verb::post);
  EXPECT_TRUE(request->address.tls);
  EXPECT_EQ(request->address.host, "login.example.com");
  EXPECT_EQ(request->address.port, "443");
  EXPECT_EQ(request->target, "/contoso.onmicrosoft.com/oauth2/v2.0/token");
  EXPECT_EQ(Header(*request, "Content-Type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(request->body,
            "grant_type=client_credentials&client_id=app%20id&client_secret=p%26ss%3Dw%2Brd%2F~"
            "&scope=https%3A%2F%2Fcognitiveservices.azure.com%2F.default");
  EXPECT_THAT(request->secrets, ::testing::Contains("p&ss=w+rd/~"));
}

TEST(BuildTokenRequest, BadEndpointsNameTheFlag) {
  EntraEndpoints endpoints;
  endpoints.imds = "169.254.169.254";
  absl::StatusOr<TokenHttpRequest> request = BuildTokenRequest(EntraCredential{}, endpoints, "");
  ASSERT_FALSE(request.ok());
  EXPECT_THAT(request.status().message(), HasSubstr("--imds-endpoint"));
}

TEST(ParseTokenResponse, AcceptsImdsStringsV2NumbersAndExpiresOn) {
  absl::StatusOr<FetchedToken> imds = ParseTokenResponse(
      200, R"({"access_token":"tok","expires_in":"86399","expires_on":"1","token_type":"Bearer"})",
      1000);
  ASSERT_TRUE(imds.ok()) << imds.status();
  EXPECT_EQ(imds->access_token, "tok");
  EXPECT_EQ(imds->lifetime, seconds(86399));

  absl::StatusOr<FetchedToken> v2 =
      ParseTokenResponse(200, R"({"token_type":"Bearer","expires_in":3599,"access_token":"t"})", 0);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->lifetime, seconds(3599));

  absl::StatusOr<FetchedToken> app_service =
      ParseTokenResponse(200, R"({"access_token":"t","expires_on":"1700000600"})", 1700000000);
  ASSERT_TRUE(app_service.ok());
  EXPECT_EQ(app_service->lifetime, seconds(600));
}

TEST(ParseTokenResponse, ErrorsSayWhatWentWrongButNeverShowAToken) {
  absl::StatusOr<FetchedToken> wrong_secret = ParseTokenResponse(
      401,
      R"({"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x\r\nCorrelation ID: y"})",
      0, "token endpoint https://login");
  ASSERT_FALSE(wrong_secret.ok());
  EXPECT_EQ(wrong_secret.status().message(),
            "token endpoint https://login answered 401: invalid_client: AADSTS7000215: Invalid "
            "client secret provided.");
  EXPECT_THAT(
      ParseTokenResponse(400, R"({"error":{"code":"x","message":"y"}})", 0).status().message(),
      HasSubstr("answered 400: x: y"));
  EXPECT_THAT(ParseTokenResponse(500, "<html>", 0).status().message(), HasSubstr("answered 500"));
  EXPECT_THAT(ParseTokenResponse(200, "not json", 0).status().message(), HasSubstr("not JSON"));
  EXPECT_THAT(ParseTokenResponse(200, R"({"expires_in":5})", 0).status().message(),
              HasSubstr("without an access_token"));
  absl::StatusOr<FetchedToken> no_expiry =
      ParseTokenResponse(200, R"({"access_token":"secret-token"})", 0);
  EXPECT_THAT(no_expiry.status().message(), HasSubstr("without expires_in or expires_on"));
  EXPECT_THAT(no_expiry.status().message(), Not(HasSubstr("secret-token")));
  EXPECT_THAT(
      ParseTokenResponse(200, R"({"access_token":"t","expires_on":100})", 200).status().message(),
      HasSubstr("already expired"));
  EXPECT_THAT(
      ParseTokenResponse(200, R"({"access_token":"t","expires_in":5,"token_type":"pop"})", 0)
          .status()
          .message(),
      HasSubstr("not a Bearer one"));
}

// A token thread and a request thread, each a single-threaded io_context like the agent's.
class TokenSourceTest : public ::testing::Test {
 protected:
  TokenSourceTest()
      : token_work_(token_io_.get_executor()), request_work_(request_io_.get_executor()) {
    token_thread_ = std::thread([this] { token_io_.run(); });
    request_thread_ = std::thread([this] { request_io_.run(); });
  }
  ~TokenSourceTest() override {
    // Threads first: the source's timer may only be touched on its own loop.
    token_work_.reset();
    request_work_.reset();
    token_io_.stop();
    request_io_.stop();
    token_thread_.join();
    request_thread_.join();
    source_.reset();
  }

  // A fetcher that answers after `delay` with `lifetime` (or fails while `fail` is set).
  void MakeSource(milliseconds delay, seconds lifetime, milliseconds timeout = milliseconds(5000)) {
    TokenFetcher fetcher = [this, delay,
                            lifetime]() -> asio::awaitable<absl::StatusOr<FetchedToken>> {
      const int n = ++fetches_;
      asio::steady_timer timer(co_await asio::this_coro::executor, delay);
      co_await timer.async_wait(asio::use_awaitable);
      if (fail_) {
        co_return absl::UnavailableError("endpoint said no");
      }
      co_return FetchedToken{absl::StrCat("token-", n), lifetime};
    };
    source_ = std::make_shared<EntraTokenSource>("test credential", token_io_.get_executor(),
                                                 std::move(fetcher), timeout);
  }

  // Authorize, else AwaitAndAuthorize, on the request thread, as the proxy does.
  absl::StatusOr<std::string> Get(milliseconds wait = milliseconds(5000)) {
    auto task = [this, wait]() -> asio::awaitable<absl::StatusOr<std::string>> {
      UpstreamRequest request;
      request.SetCredential("api-key", "stale");
      if (!source_->Authorize(request, SteadyClock::now())) {
        absl::Status status =
            co_await source_->AwaitAndAuthorize(request, SteadyClock::now() + wait);
        if (!status.ok()) {
          co_return status;
        }
      }
      if (request.credential_name != "Authorization") {
        co_return absl::InternalError("api-key left in place");
      }
      co_return std::string(request.credential_value.data(), request.credential_value.size());
    };
    return asio::co_spawn(request_io_, task(), asio::use_future).get();
  }

  asio::io_context token_io_{1};
  asio::io_context request_io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> token_work_;
  asio::executor_work_guard<asio::io_context::executor_type> request_work_;
  std::thread token_thread_;
  std::thread request_thread_;
  std::atomic<int> fetches_{0};
  std::atomic<bool> fail_{false};
  std::shared_ptr<EntraTokenSource> source_;
};

TEST_F(TokenSourceTest, ConcurrentRequestsShareOneFetch) {
  MakeSource(milliseconds(200), seconds(3600));
  // Many waiters on two request loops at once, none with a token yet.
  asio::io_context second_io{1};
  auto second_work = asio::make_work_guard(second_io);
  std::thread second_thread([&] { second_io.run(); });
  std::vector<std::future<absl::StatusOr<std::string>>> results;
  auto task = [this]() -> asio::awaitable<absl::StatusOr<std::string>> {
    UpstreamRequest request;
    if (!source_->Authorize(request, SteadyClock::now())) {
      absl::Status status =
          co_await source_->AwaitAndAuthorize(request, SteadyClock::now() + seconds(5));
      if (!status.ok()) {
        co_return status;
      }
    }
    co_return std::string(request.credential_value.data(), request.credential_value.size());
  };
  for (int i = 0; i < 40; ++i) {
    results.push_back(
        asio::co_spawn(i % 2 == 0 ? request_io_ : second_io, task(), asio::use_future));
  }
  for (auto& result : results) {
    absl::StatusOr<std::string> header = result.get();
    ASSERT_TRUE(header.ok()) << header.status();
    EXPECT_EQ(*header, "Bearer token-1");
  }
  EXPECT_EQ(fetches_.load(), 1);
  // Cached afterwards: the fast path answers without fetching.
  EXPECT_EQ(Get().value_or(""), "Bearer token-1");
  EXPECT_EQ(fetches_.load(), 1);
  second_work.reset();
  second_thread.join();
}

TEST_F(TokenSourceTest, PrefetchedTokenIsReadyAndCached) {
  MakeSource(milliseconds(1), seconds(3600));
  source_->Prefetch();
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(Get().value_or(""), "Bearer token-1");
  }
  EXPECT_EQ(fetches_.load(), 1);
  boost::json::object status = source_->StatusJson(SteadyClock::now());
  EXPECT_EQ(status.at("state").as_string(), "valid");
  EXPECT_EQ(status.at("fetches").as_int64(), 1);
  EXPECT_THAT(boost::json::serialize(status), Not(HasSubstr("token-1")));
}

TEST_F(TokenSourceTest, FailuresReportTheReasonAndBackOff) {
  fail_ = true;
  MakeSource(milliseconds(1), seconds(3600));
  absl::StatusOr<std::string> first = Get();
  ASSERT_FALSE(first.ok());
  EXPECT_THAT(first.status().message(),
              HasSubstr("no Microsoft Entra ID token for test credential: endpoint said no"));
  // Within the backoff nobody waits and nothing is fetched.
  absl::StatusOr<std::string> second = Get();
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("next attempt in"));
  EXPECT_EQ(fetches_.load(), 1);
  EXPECT_EQ(source_->StatusJson(SteadyClock::now()).at("state").as_string(), "failing");

  // The endpoint recovers: a retry after the backoff (0.5 to 1 s) gets the token.
  fail_ = false;
  absl::StatusOr<std::string> header;
  for (int i = 0; i < 100 && !header.ok(); ++i) {
    std::this_thread::sleep_for(milliseconds(50));
    header = Get();
  }
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(*header, "Bearer token-2");
}

// Also the agent's shutdown order: the fetch still hangs when the fixture goes, and the
// request loop is destroyed before the token loop, whose teardown frees the source. The
// source must not hold the gone request's timer then (ASan caught a use-after-free here).
TEST_F(TokenSourceTest, AHungEndpointNeverHangsARequest) {
  MakeSource(milliseconds(60'000), seconds(3600));
  const SteadyTime start = SteadyClock::now();
  absl::StatusOr<std::string> header = Get(milliseconds(200));
  ASSERT_FALSE(header.ok());
  EXPECT_EQ(header.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(header.status().message(), HasSubstr("has not answered"));
  EXPECT_LT(SteadyClock::now() - start, seconds(30));
  EXPECT_EQ(fetches_.load(), 1);
}

TEST_F(TokenSourceTest, RefreshesBeforeExpiryWhileTheOldTokenServes) {
  // 2 s tokens: refresh due after 1.8 s, sent until 1.9 s.
  MakeSource(milliseconds(1), seconds(2));
  std::vector<std::string> seen;
  for (int i = 0; i < 400 && fetches_.load() < 3; ++i) {
    absl::StatusOr<std::string> header = Get();
    ASSERT_TRUE(header.ok()) << header.status();
    if (seen.empty() || seen.back() != *header) {
      seen.push_back(*header);
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_GE(fetches_.load(), 3);
  EXPECT_THAT(seen, ::testing::IsSupersetOf({"Bearer token-1", "Bearer token-2"}));
}

TEST(EntraCredential, KeysSeparateCredentialsAndDescriptionsHoldNoSecret) {
  EntraCredential system;
  EntraCredential user;
  user.client_id = "uami";
  EntraCredential app;
  app.kind = EntraCredential::Kind::kClientCredentials;
  app.tenant_id = "t";
  app.client_id = "c";
  app.secret_env = "SECRET_ENV";
  EntraCredential app_file = app;
  app_file.secret_env.clear();
  app_file.secret_file = "/secret";
  EXPECT_NE(system.Key(), user.Key());
  EXPECT_NE(app.Key(), app_file.Key());
  EXPECT_EQ(app.Describe(), "client credentials (tenant t, client c)");
  EXPECT_EQ(user.Describe(), "managed identity (client id uami)");
}

}  // namespace
}  // namespace spillway
