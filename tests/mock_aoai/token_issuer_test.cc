// The mock's Entra ID token endpoints without a socket: what each endpoint demands, the
// AADSTS errors, and that its tokens expire and cannot be forged (time is injected).
#include "tests/mock_aoai/token_issuer.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace spillway::mock {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kScope[] = "https%3A%2F%2Fcognitiveservices.azure.com%2F.default";
constexpr char kForm[] = "application/x-www-form-urlencoded";

class TokenIssuerTest : public ::testing::Test {
 protected:
  TokenIssuerTest() : issuer_(Config(), [this] { return now_; }) {}

  static EntraConfig Config() {
    EntraConfig config;
    config.clients = {{"contoso", "app-1", "s3cr3t+/=~"}, {"*", "app-any", "other"}};
    config.managed_identity_client_ids = {"uami-1"};
    config.identity_header = "identity-header-value";
    config.token_lifetime = absl::Seconds(60);
    return config;
  }

  TokenAnswer Imds(absl::string_view query, absl::string_view metadata = "true") {
    TokenRequest request;
    request.endpoint = TokenEndpoint::kImds;
    request.query = query;
    request.metadata_header = metadata;
    return issuer_.Handle(request);
  }

  TokenAnswer ClientCredentials(absl::string_view tenant, absl::string_view body,
                                absl::string_view content_type = kForm) {
    TokenRequest request;
    request.endpoint = TokenEndpoint::kClientCredentials;
    request.tenant = tenant;
    request.body = body;
    request.content_type = content_type;
    return issuer_.Handle(request);
  }

  static std::string Body(absl::string_view client, absl::string_view secret,
                          absl::string_view scope = kScope) {
    return absl::StrCat("grant_type=client_credentials&client_id=", client,
                        "&client_secret=", secret, "&scope=", scope);
  }

  static boost::json::object Json(const TokenAnswer& answer) {
    return boost::json::parse(answer.body).as_object();
  }

  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
  TokenIssuer issuer_;
};

TEST_F(TokenIssuerTest, ImdsIssuesACognitiveServicesTokenWithStringNumbers) {
  TokenAnswer answer =
      Imds("api-version=2018-02-01&resource=https%3A%2F%2Fcognitiveservices.azure.com");
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_TRUE(answer.issued);
  EXPECT_EQ(answer.grant, TokenGrant::kManagedIdentity);
  boost::json::object body = Json(answer);
  EXPECT_EQ(body.at("expires_in").as_string(), "60");
  EXPECT_EQ(body.at("expires_on").as_string(), "1700000060");
  EXPECT_EQ(body.at("token_type").as_string(), "Bearer");
  EXPECT_EQ(body.at("resource").as_string(), "https://cognitiveservices.azure.com");
  EXPECT_EQ(issuer_.Check(std::string(body.at("access_token").as_string())), TokenVerdict::kValid);
}

TEST_F(TokenIssuerTest, ImdsRequirementsAreEnforced) {
  const std::string good = "api-version=2018-02-01&resource=https://cognitiveservices.azure.com/";
  EXPECT_EQ(Imds(good).status, 200) << "a trailing slash names the same resource";
  TokenAnswer no_header = Imds(good, "");
  EXPECT_EQ(no_header.status, 400);
  EXPECT_THAT(no_header.body, HasSubstr("Required metadata header not specified"));
  EXPECT_FALSE(no_header.issued);
  EXPECT_THAT(Imds("resource=https://cognitiveservices.azure.com").body,
              HasSubstr("'api-version' is missing"));
  EXPECT_THAT(Imds("api-version=2018-02-01").body, HasSubstr("'resource' is missing"));
  EXPECT_THAT(Imds("api-version=2018-02-01&resource=https://vault.azure.net").body,
              HasSubstr("AADSTS500011"));
  EXPECT_EQ(Imds(good + "&client_id=uami-1").status, 200);
  TokenAnswer unknown = Imds(good + "&client_id=uami-2");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_THAT(unknown.body, HasSubstr("Identity not found"));
}

TEST_F(TokenIssuerTest, AppServiceEndpointNeedsItsHeaderAndReportsOnlyExpiresOn) {
  TokenRequest request;
  request.endpoint = TokenEndpoint::kAppService;
  request.query = "api-version=2019-08-01&resource=https://cognitiveservices.azure.com";
  request.identity_header = "identity-header-value";
  TokenAnswer answer = issuer_.Handle(request);
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(answer.grant, TokenGrant::kAppServiceIdentity);
  boost::json::object body = Json(answer);
  EXPECT_FALSE(body.contains("expires_in"));
  EXPECT_EQ(body.at("expires_on").as_string(), "1700000060");
  request.identity_header = "guess";
  EXPECT_EQ(issuer_.Handle(request).status, 401);
}

TEST_F(TokenIssuerTest, ClientCredentialsChecksEverythingAndNeverEchoesTheSecret) {
  // The secret has characters that must be percent-encoded in a form.
  TokenAnswer ok = ClientCredentials("contoso", Body("app-1", "s3cr3t%2B%2F%3D~"));
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.grant, TokenGrant::kClientCredentials);
  boost::json::object body = Json(ok);
  EXPECT_EQ(body.at("expires_in").as_int64(), 60) << "the v2.0 endpoint sends numbers";
  EXPECT_EQ(body.at("token_type").as_string(), "Bearer");
  EXPECT_EQ(ClientCredentials("any-tenant", Body("app-any", "other")).status, 200);

  TokenAnswer wrong = ClientCredentials("contoso", Body("app-1", "not-the-secret"));
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(Json(wrong).at("error").as_string(), "invalid_client");
  EXPECT_THAT(wrong.body, HasSubstr("AADSTS7000215"));
  EXPECT_THAT(wrong.body, Not(HasSubstr("not-the-secret")));
  EXPECT_THAT(wrong.body, Not(HasSubstr("s3cr3t")));
  // "+" in a form is a space: an unencoded secret is a different secret.
  EXPECT_EQ(ClientCredentials("contoso", Body("app-1", "s3cr3t+/=~")).status, 401);

  // The "*" entry makes every tenant exist, with only its own client in it.
  EXPECT_THAT(ClientCredentials("fabrikam", Body("app-1", "x")).body, HasSubstr("AADSTS700016"));
  EntraConfig contoso_only = Config();
  contoso_only.clients.pop_back();
  TokenRequest other_tenant;
  other_tenant.endpoint = TokenEndpoint::kClientCredentials;
  other_tenant.tenant = "fabrikam";
  other_tenant.content_type = kForm;
  const std::string form = Body("app-1", "x");
  other_tenant.body = form;
  EXPECT_THAT(TokenIssuer(contoso_only, [this] { return now_; }).Handle(other_tenant).body,
              HasSubstr("AADSTS90002"));
  EXPECT_THAT(ClientCredentials("contoso", Body("app-2", "x")).body, HasSubstr("AADSTS700016"));
  EXPECT_THAT(
      ClientCredentials("contoso", Body("app-1", "x", "https://cognitiveservices.azure.com")).body,
      HasSubstr("AADSTS1002012"));
  EXPECT_THAT(
      ClientCredentials("contoso", Body("app-1", "x", "https://vault.azure.net/.default")).body,
      HasSubstr("AADSTS500011"));
  EXPECT_THAT(ClientCredentials("contoso", "grant_type=password&client_id=app-1").body,
              HasSubstr("AADSTS70003"));
  EXPECT_THAT(ClientCredentials("contoso", "client_id=app-1").body,
              HasSubstr("parameter: 'grant_type'"));
  EXPECT_THAT(
      ClientCredentials("contoso", Body("app-1", "s3cr3t%2B%2F%3D~"), "application/json").body,
      HasSubstr("parameter: 'grant_type'"))
      << "a JSON body is not a form";
}

TEST_F(TokenIssuerTest, TokensExpireAndCannotBeForged) {
  const std::string token = issuer_.Mint(TokenGrant::kManagedIdentity, now_ + absl::Seconds(5));
  EXPECT_EQ(issuer_.Check(token), TokenVerdict::kValid);
  now_ += absl::Seconds(5);
  EXPECT_EQ(issuer_.Check(token), TokenVerdict::kExpired);

  // Moving the expiry breaks the signature.
  std::string forged = token;
  const size_t at = forged.find(".1700000");
  ASSERT_NE(at, std::string::npos);
  forged[at + 1] = '2';
  EXPECT_EQ(issuer_.Check(forged), TokenVerdict::kInvalid);
  EXPECT_EQ(issuer_.Check("mock-entra.garbage"), TokenVerdict::kInvalid);
  EXPECT_EQ(issuer_.Check("an-api-key"), TokenVerdict::kNotIssuedHere);

  // Another process's tokens are not ours either.
  TokenIssuer other(Config(), [this] { return now_; });
  EXPECT_EQ(other.Check(issuer_.Mint(TokenGrant::kManagedIdentity, now_ + absl::Hours(1))),
            TokenVerdict::kInvalid);
}

TEST(EntraClientSpecTest, ParsesAndNeverEchoesASecret) {
  absl::StatusOr<EntraClientSpec> spec = ParseEntraClientSpec("t:c:a:b:c");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->tenant, "t");
  EXPECT_EQ(spec->client_id, "c");
  EXPECT_EQ(spec->secret, "a:b:c");
  absl::StatusOr<EntraClientSpec> bad = ParseEntraClientSpec("t:topsecret");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), Not(HasSubstr("topsecret")));
  absl::StatusOr<std::vector<EntraClientSpec>> list = ParseEntraClientList("a:b:c, d:e:f");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
}

}  // namespace
}  // namespace spillway::mock
