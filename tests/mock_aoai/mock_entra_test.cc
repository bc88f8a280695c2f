// The mock's Entra ID endpoints over HTTP against the real binary: tokens from IMDS and the
// client-credentials endpoint work as Bearer on the data plane until they expire, then get
// Azure's 401; /mock/stats counts issues per grant and rejections.
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/mock_test_util.h"

namespace spillway::mock {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kImdsPath[] =
    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource="
    "https%3A%2F%2Fcognitiveservices.azure.com";
constexpr char kForm[] = "application/x-www-form-urlencoded";

boost::json::value EntraStats(const test::MockAoaiProcess& mock) {
  test::HttpClient client = Client(mock);
  return Json(MustSend(client, "GET", "/mock/stats").body).at("entra");
}

test::HttpHeaders Bearer(absl::string_view token) {
  return {{"Authorization", absl::StrCat("Bearer ", token)}};
}

TEST(MockEntraTest, ImdsTokenWorksAsBearerUntilItExpires) {
  SPILLWAY_START_MOCK(mock, {"--api-keys", "k", "--token-lifetime-s", "1"});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse refused = MustSend(client, "GET", kImdsPath);
  EXPECT_EQ(refused.status, 400);
  EXPECT_THAT(refused.body, HasSubstr("Required metadata header not specified"));

  const test::HttpResponse issued = MustSend(client, "GET", kImdsPath, "", {{"Metadata", "true"}});
  ASSERT_EQ(issued.status, 200) << issued.body;
  EXPECT_EQ(issued.Header("content-type"), "application/json");
  const std::string token = Str(Json(issued.body).at("access_token"));
  EXPECT_EQ(Str(Json(issued.body).at("expires_in")), "1");
  ASSERT_FALSE(token.empty());

  const test::HttpResponse ok =
      MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi"), Bearer(token));
  // A 1 s token can expire before it is used on a slow machine; then the 401 below is all.
  if (ok.status != 401) {
    EXPECT_EQ(ok.status, 200) << ok.body;
  }
  int status = ok.status;
  test::HttpResponse expired = ok;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (status != 401 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
    expired = MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi"), Bearer(token));
    status = expired.status;
  }
  ASSERT_EQ(status, 401);
  EXPECT_THAT(expired.body, HasSubstr("Access token is missing, invalid, audience is incorrect"));

  // A token this mock did not sign is refused the same way; an unknown plain bearer key gets
  // the api-key message as before.
  std::string forged = token;
  forged.back() = forged.back() == '0' ? '1' : '0';
  EXPECT_THAT(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi"), Bearer(forged)).body,
              HasSubstr("Access token is missing"));
  EXPECT_THAT(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi"), Bearer("nope")).body,
              HasSubstr("invalid subscription key"));

  const boost::json::value stats = EntraStats(*mock);
  EXPECT_EQ(stats.at("tokens_issued").at("managed_identity").as_int64(), 1);
  EXPECT_EQ(stats.at("tokens_issued").at("client_credentials").as_int64(), 0);
  EXPECT_EQ(stats.at("token_requests_refused").as_int64(), 1);
  EXPECT_GE(stats.at("bearer_rejected").at("expired").as_int64(), 1);
  EXPECT_EQ(stats.at("bearer_rejected").at("invalid").as_int64(), 1);
}

TEST(MockEntraTest, ClientCredentialsValidatesTheSecret) {
  SPILLWAY_START_MOCK(mock, {"--api-keys", "k", "--entra-clients", "contoso:app-1:good-secret"});
  test::HttpClient client = Client(*mock);
  const std::string path = "/contoso/oauth2/v2.0/token";
  auto form = [](absl::string_view secret) {
    return absl::StrCat("grant_type=client_credentials&client_id=app-1&client_secret=", secret,
                        "&scope=https%3A%2F%2Fcognitiveservices.azure.com%2F.default");
  };
  const test::HttpResponse wrong =
      MustSend(client, "POST", path, form("bad-secret"), {{"Content-Type", kForm}});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(Str(Json(wrong.body).at("error")), "invalid_client");
  EXPECT_THAT(wrong.body, HasSubstr("AADSTS7000215"));
  EXPECT_THAT(wrong.body, Not(HasSubstr("bad-secret")));
  EXPECT_THAT(wrong.body, Not(HasSubstr("good-secret")));

  const test::HttpResponse good =
      MustSend(client, "POST", path, form("good-secret"), {{"Content-Type", kForm}});
  ASSERT_EQ(good.status, 200) << good.body;
  EXPECT_EQ(Json(good.body).at("expires_in").as_int64(), 3600);
  const std::string token = Str(Json(good.body).at("access_token"));
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi"), Bearer(token)).status,
            200);
  // Api-keys keep working next to tokens.
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi"), {{"api-key", "k"}}).status,
            200);

  const boost::json::value stats = EntraStats(*mock);
  EXPECT_EQ(stats.at("tokens_issued").at("client_credentials").as_int64(), 1);
  EXPECT_EQ(stats.at("token_requests_refused").as_int64(), 1);

  // POST /mock/reset clears the counts too.
  EXPECT_EQ(MustSend(client, "POST", "/mock/reset").status, 200);
  EXPECT_EQ(EntraStats(*mock).at("tokens_issued").at("client_credentials").as_int64(), 0);
}

TEST(MockEntraTest, AppServiceEndpointIsOffUnlessItsHeaderIsConfigured) {
  const std::string path =
      "/msi/token?api-version=2019-08-01&resource=https://cognitiveservices.azure.com";
  {
    SPILLWAY_START_MOCK(mock, {});
    test::HttpClient client = Client(*mock);
    EXPECT_EQ(MustSend(client, "GET", path, "", {{"X-IDENTITY-HEADER", "x"}}).status, 404);
  }
  SPILLWAY_START_MOCK(mock, {"--identity-header", "hdr"});
  test::HttpClient client = Client(*mock);
  EXPECT_EQ(MustSend(client, "GET", path, "", {{"X-IDENTITY-HEADER", "x"}}).status, 401);
  const test::HttpResponse ok = MustSend(client, "GET", path, "", {{"X-IDENTITY-HEADER", "hdr"}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_FALSE(Json(ok.body).as_object().contains("expires_in"));
  EXPECT_EQ(EntraStats(*mock).at("tokens_issued").at("app_service_identity").as_int64(), 1);
}

}  // namespace
}  // namespace spillway::mock
