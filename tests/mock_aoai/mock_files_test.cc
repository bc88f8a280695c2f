// The Files API against the real binary: upload, list, retrieve, content, delete; the dated
// surface; validation; a 128 MiB upload streamed through (its bytes and SHA-256 in the stats,
// the mock's memory flat); the upload limit; the stats and their reset.
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/h2_test_client.h"
#include "tests/mock_aoai/mock_files_test_util.h"

namespace spillway::mock {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;

using ::testing::HasSubstr;

constexpr char kFiles[] = "/openai/v1/files";

std::string FilePath(absl::string_view id, absl::string_view suffix = "") {
  return absl::StrCat(kFiles, "/", id, suffix);
}

bool IsFileId(const std::string& id) {
  static const std::regex kId("file-[0-9a-f]{32}");
  return std::regex_match(id, kId);
}

TEST(MockFilesTest, UploadListRetrieveContentDeleteThen404) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  const std::string content = "{\"a\":1}\n{\"a\":2}\n";
  const test::HttpResponse created = PostForm(
      client, kFiles, {Field("purpose", "assistants"), FilePart("file", "a.jsonl", content)});
  ASSERT_EQ(created.status, 200) << created.body;
  EXPECT_EQ(created.Header("content-type"), "application/json");
  EXPECT_TRUE(created.HasHeader("x-request-id"));
  const boost::json::value file = Json(created.body);
  const std::string id = Str(file.at("id"));
  EXPECT_TRUE(IsFileId(id)) << id;
  EXPECT_EQ(Str(file.at("object")), "file");
  EXPECT_EQ(file.at("bytes").to_number<int64_t>(), static_cast<int64_t>(content.size()));
  EXPECT_GT(file.at("created_at").as_int64(), 1'600'000'000);
  EXPECT_EQ(Str(file.at("filename")), "a.jsonl");
  EXPECT_EQ(Str(file.at("purpose")), "assistants");
  EXPECT_EQ(Str(file.at("status")), "processed");

  const std::string other = UploadFile(client, kFiles, "batch", "{}\n");
  const boost::json::value list = Json(MustSend(client, "GET", kFiles).body);
  EXPECT_EQ(Str(list.at("object")), "list");
  ASSERT_EQ(list.at("data").as_array().size(), 2u);
  EXPECT_EQ(Str(list.at("data").at(0).at("id")), other);  // newest first
  EXPECT_EQ(list.at("data").at(1), file);
  const boost::json::value batch_only =
      Json(MustSend(client, "GET", absl::StrCat(kFiles, "?purpose=batch")).body);
  ASSERT_EQ(batch_only.at("data").as_array().size(), 1u);
  EXPECT_EQ(Str(batch_only.at("data").at(0).at("id")), other);
  const boost::json::value page =
      Json(MustSend(client, "GET", absl::StrCat(kFiles, "?limit=1&order=asc")).body);
  ASSERT_EQ(page.at("data").as_array().size(), 1u);
  EXPECT_EQ(Str(page.at("data").at(0).at("id")), id);
  EXPECT_TRUE(page.at("has_more").as_bool());

  const test::HttpResponse got = MustSend(client, "GET", FilePath(id));
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(Json(got.body), file);
  const test::HttpResponse bytes = MustSend(client, "GET", FilePath(id, "/content"));
  ASSERT_EQ(bytes.status, 200) << bytes.body;
  EXPECT_EQ(bytes.body, content);
  EXPECT_EQ(bytes.Header("content-type"), "application/octet-stream");

  const test::HttpResponse deleted = MustSend(client, "DELETE", FilePath(id));
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(deleted.body, absl::StrCat(R"({"id":")", id, R"(","object":"file","deleted":true})"));
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", FilePath(id)}, {"GET", FilePath(id, "/content")}, {"DELETE", FilePath(id)}}) {
    const test::HttpResponse gone = MustSend(client, method, path);
    EXPECT_EQ(gone.status, 404) << method << " " << path;
    EXPECT_EQ(gone.body, OpenAiNotFound(absl::StrCat("No such File object: ", id), "id"));
  }
  EXPECT_EQ(MustSend(client, "PUT", FilePath(other)).status, 404);
  EXPECT_EQ(MustSend(client, "GET", FilePath(other, "/nothing")).status, 404);
}

TEST(MockFilesTest, DatedSurfaceSharesTheFiles) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  const std::string dated = absl::StrCat("/openai/files?api-version=", kApiVersion);
  const std::string id = UploadFile(client, dated, "batch", "{}\n");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(MustSend(client, "GET", FilePath(id)).status, 200);
  EXPECT_EQ(
      MustSend(client, "GET", absl::StrCat("/openai/files/", id, "?api-version=", kApiVersion))
          .status,
      200);
  // The dated surface needs its api-version; the v1 one refuses a dated one.
  EXPECT_EQ(MustSend(client, "GET", absl::StrCat("/openai/files/", id)).status, 404);
  const test::HttpResponse dated_on_v1 =
      MustSend(client, "GET", absl::StrCat(FilePath(id), "?api-version=", kApiVersion));
  EXPECT_EQ(dated_on_v1.status, 400);
  EXPECT_THAT(dated_on_v1.body, HasSubstr("API version not supported"));
}

TEST(MockFilesTest, RefusesBadForms) {
  SPILLWAY_START_MOCK(mock, {"--api-keys=k1"});
  test::HttpClient client = Client(*mock);
  const test::HttpHeaders key = {{"api-key", "k1"}};
  auto post = [&](const std::string& body, absl::string_view type) {
    return MustSend(client, "POST", kFiles, body,
                    {{"api-key", "k1"}, {"Content-Type", std::string(type)}});
  };
  const std::string type = FormHeaders()[0].second;
  EXPECT_EQ(
      MustSend(client, "POST", kFiles, FormBody({Field("purpose", "batch")}), FormHeaders()).status,
      401);
  const test::HttpResponse json = post(R"({"purpose":"batch"})", "application/json");
  EXPECT_EQ(json.status, 400);
  EXPECT_THAT(json.body, HasSubstr("multipart/form-data"));
  const test::HttpResponse no_purpose = post(FormBody({FilePart("file", "a", "x")}), type);
  EXPECT_EQ(no_purpose.status, 400);
  EXPECT_THAT(no_purpose.body, HasSubstr("Missing required parameter: 'purpose'"));
  const test::HttpResponse bad_purpose =
      post(FormBody({Field("purpose", "nonsense"), FilePart("file", "a", "x")}), type);
  EXPECT_EQ(bad_purpose.status, 400);
  EXPECT_THAT(bad_purpose.body, HasSubstr("invalid_value"));
  const test::HttpResponse no_file = post(FormBody({Field("purpose", "batch")}), type);
  EXPECT_EQ(no_file.status, 400);
  EXPECT_THAT(no_file.body, HasSubstr("'file'"));
  const test::HttpResponse truncated =
      post(FormBody({Field("purpose", "batch")}).substr(0, 40), type);
  EXPECT_EQ(truncated.status, 400);
  EXPECT_THAT(truncated.body, HasSubstr("closing boundary"));
  EXPECT_EQ(MockStats(*mock).at("files").at("stored").as_int64(), 0);
}

// VmRSS of `pid`, in KiB.
int64_t RssKib(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    if (absl::ConsumePrefix(&rest, "VmRSS:")) {
      int64_t kib = 0;
      EXPECT_TRUE(
          absl::SimpleAtoi(absl::StripSuffix(absl::StripAsciiWhitespace(rest), " kB"), &kib));
      return kib;
    }
  }
  ADD_FAILURE() << "no VmRSS for " << pid;
  return 0;
}

struct StreamedUpload {
  int status = 0;
  std::string body;
  std::string sha256;  // of the file part's content
};

// Uploads `size` pseudo-random bytes as the file part, chunked, through a plain socket: neither
// side ever holds the whole of it.
StreamedUpload StreamUpload(int port, absl::string_view target, uint64_t size) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::address_v4::loopback(), static_cast<uint16_t>(port)});
  const timeval timeout{30, 0};
  setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  auto chunk = [&](absl::string_view data) {
    asio::write(socket, asio::buffer(absl::StrCat(absl::Hex(data.size()), "\r\n")));
    asio::write(socket, asio::buffer(data.data(), data.size()));
    asio::write(socket, asio::buffer("\r\n", 2));
  };
  asio::write(socket, asio::buffer(absl::StrCat(
                          "POST ", target, " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ",
                          FormHeaders()[0].second, "\r\nTransfer-Encoding: chunked\r\n\r\n")));
  std::string head = FormBody({Field("purpose", "assistants"), FilePart("file", "big.bin", "")});
  head.resize(head.find("\r\n\r\n\r\n--") + 4);  // up to the file part's content
  chunk(head);
  EVP_MD_CTX* hash = EVP_MD_CTX_new();
  EVP_DigestInit_ex(hash, EVP_sha256(), nullptr);
  std::string piece(1 << 20, '\0');
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (uint64_t sent = 0; sent < size; sent += piece.size()) {
    for (char& c : piece) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      c = static_cast<char>(state);
    }
    piece.resize(std::min<uint64_t>(piece.size(), size - sent));
    EVP_DigestUpdate(hash, piece.data(), piece.size());
    chunk(piece);
  }
  chunk(absl::StrCat("\r\n--", kFormBoundary, "--\r\n"));
  asio::write(socket, asio::buffer("0\r\n\r\n", 5));
  unsigned char digest[SHA256_DIGEST_LENGTH];
  EVP_DigestFinal_ex(hash, digest, nullptr);
  EVP_MD_CTX_free(hash);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> response;
  boost::system::error_code ec;
  http::read(socket, buffer, response, ec);
  EXPECT_FALSE(ec) << ec.message();
  return {
      static_cast<int>(response.result_int()), response.body(),
      absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), sizeof digest))};
}

TEST(MockFilesTest, LargeUploadIsStreamedNotHeld) {
  SPILLWAY_START_MOCK(mock, {"--body-limit=1048576"});
  constexpr uint64_t kSize = uint64_t{128} << 20;
  // Warm up: the first upload allocates the session's buffers.
  test::HttpClient client = Client(*mock);
  UploadFile(client, kFiles, "assistants", "warm up");
  const int64_t before = RssKib(mock->process().pid());
  const StreamedUpload upload = StreamUpload(mock->port(), kFiles, kSize);
  const int64_t after = RssKib(mock->process().pid());
  ASSERT_EQ(upload.status, 200) << upload.body;
  const boost::json::value file = Json(upload.body);
  EXPECT_EQ(file.at("bytes").to_number<uint64_t>(), kSize);
  EXPECT_EQ(Str(file.at("filename")), "big.bin");
  EXPECT_LT(after - before, 16 * 1024) << "RSS grew from " << before << " to " << after << " KiB";

  const boost::json::value stats = MockStats(*mock);
  const boost::json::array& uploads = stats.at("uploads").as_array();
  ASSERT_EQ(uploads.size(), 2u);
  EXPECT_EQ(Str(uploads.back().at("path")), kFiles);
  EXPECT_EQ(Str(uploads.back().at("field")), "file");
  EXPECT_EQ(Str(uploads.back().at("filename")), "big.bin");
  EXPECT_EQ(uploads.back().at("bytes").to_number<uint64_t>(), kSize);
  EXPECT_EQ(Str(uploads.back().at("sha256")), upload.sha256);
  EXPECT_EQ(Str(uploads.back().at("deployment")), "");
  EXPECT_EQ(stats.at("uploads_total").as_int64(), 2);
  EXPECT_EQ(stats.at("files").at("stored").as_int64(), 2);
  // Too big to keep: its content cannot be read back.
  const test::HttpResponse content =
      MustSend(client, "GET", FilePath(Str(file.at("id")), "/content"));
  EXPECT_EQ(content.status, 400);
  EXPECT_THAT(content.body, HasSubstr("keeps the content of files up to 1048576 bytes"));
}

TEST(MockFilesTest, UploadOverTheLimitIs413) {
  SPILLWAY_START_MOCK(mock, {"--upload-limit=65536"});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse refused = PostForm(
      client, kFiles, {Field("purpose", "batch"), FilePart("file", "a", std::string(70'000, 'x'))});
  EXPECT_EQ(refused.status, 413);
  EXPECT_THAT(refused.body, HasSubstr("65536"));
  test::HttpClient again = Client(*mock);
  EXPECT_FALSE(UploadFile(again, kFiles, "batch", std::string(60'000, 'x')).empty());
}

// HTTP/2 streams uploads too: past --body-limit, within --upload-limit.
TEST(MockFilesTest, UploadOverHttp2IsStreamed) {
  SPILLWAY_START_MOCK(mock, {"--body-limit=65536", "--upload-limit=8388608"});
  absl::StatusOr<std::unique_ptr<H2TestClient>> client = H2TestClient::Connect(mock->port());
  ASSERT_TRUE(client.ok()) << client.status();
  const std::string content(4 << 20, 'z');
  const int32_t accepted = (*client)->Submit(
      "POST", kFiles, FormBody({Field("purpose", "batch"), FilePart("file", "z", content)}),
      FormHeaders());
  const int32_t refused = (*client)->Submit(
      "POST", kFiles,
      FormBody({Field("purpose", "batch"), FilePart("file", "z", std::string(9 << 20, 'z'))}),
      FormHeaders());
  ASSERT_TRUE((*client)->RunUntilAllClosed(absl::Seconds(30)).ok());
  ASSERT_EQ((*client)->stream(accepted).status, 200) << (*client)->stream(accepted).body;
  EXPECT_EQ(Json((*client)->stream(accepted).body).at("bytes").to_number<uint64_t>(),
            content.size());
  EXPECT_EQ((*client)->stream(refused).status, 413);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(content.data()), content.size(), digest);
  const boost::json::value stats = MockStats(*mock);
  ASSERT_EQ(stats.at("uploads").as_array().size(), 1u);
  EXPECT_EQ(
      Str(stats.at("uploads").at(0).at("sha256")),
      absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), sizeof digest)));
}

TEST(MockFilesTest, StatsCountAndResetClears) {
  SPILLWAY_START_MOCK(mock, {"--files-max-stored=2"});
  test::HttpClient client = Client(*mock);
  const std::string first = UploadFile(client, kFiles, "batch", "1\n");
  UploadFile(client, kFiles, "batch", "2\n");
  UploadFile(client, kFiles, "batch", "3\n");
  EXPECT_EQ(MustSend(client, "GET", FilePath(first)).status, 404);  // evicted, oldest first
  boost::json::value stats = MockStats(*mock);
  EXPECT_EQ(stats.at("files").at("stored").as_int64(), 2);
  EXPECT_EQ(stats.at("files").at("evicted").as_int64(), 1);
  EXPECT_EQ(stats.at("uploads").as_array().size(), 3u);
  EXPECT_EQ(Str(stats.at("uploads").at(0).at("sha256")),
            "4355a46b19d348dc2f57c046f8ef63d4538ebb936000f3c9ee954a27460dd865");  // "1\n"
  ASSERT_EQ(MustSend(client, "POST", "/mock/reset").status, 200);
  stats = MockStats(*mock);
  EXPECT_EQ(stats.at("files").at("stored").as_int64(), 0);
  EXPECT_EQ(stats.at("uploads").as_array().size(), 0u);
  EXPECT_EQ(stats.at("batches").at("stored").as_int64(), 0);
  EXPECT_EQ(stats.at("vector_stores").at("stored").as_int64(), 0);
}

}  // namespace
}  // namespace spillway::mock
