// Uploads stream through the agent (docs/uploads.md): files, audio and image edits go to one
// backend as they arrive, never held whole; a created file is pinned to its backend, and a
// batch made from it lands there too.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/dataplane/agent_fixture.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;

// Route gpt-4o (the tenants' default route) spreads over mocks "a" and "b"; route whisper
// too, over their deployments "stt" (so a route name that reaches a backend unrewritten is
// refused there), with a 1 MiB upload limit.
const std::string kTopology = std::string(kTwoInstancesYaml) + R"(
deployments:
  - { instance: a, name: gpt-4o, model: gpt-4o, version: "1", sku: Standard, capacity: 1000 }
  - { instance: b, name: gpt-4o, model: gpt-4o, version: "1", sku: Standard, capacity: 1000 }
  - { instance: a, name: stt, model: whisper, version: "1", sku: Standard, capacity: 1000 }
  - { instance: b, name: stt, model: whisper, version: "1", sku: Standard, capacity: 1000 }
pools:
  - { name: p, members: [ { deployment: a/gpt-4o }, { deployment: b/gpt-4o } ] }
  - { name: w, members: [ { deployment: a/stt }, { deployment: b/stt } ] }
routes:
  - { name: gpt-4o, stamp: us, tiers: [ p ] }
  - { name: whisper, stamp: us, tiers: [ w ], max_upload_bytes: 1048576 }
tenants:
  - { name: app, stamp: us, routes: [ gpt-4o, whisper ], api_keys: [ { name: k, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 } ] }
)";

constexpr char kBoundary[] = "spillway-test-boundary-7MA4YWxkTrZu0gW";

// One multipart upload sent over a raw socket, its file part generated as it is sent (the test
// holds no more of it than the agent may), hashed on the way.
struct Upload {
  std::string target = "/openai/v1/files";
  std::string key = kTenantKey;
  std::string file_field = "file";
  std::map<std::string, std::string> fields = {{"purpose", "assistants"}};
  std::map<std::string, std::string> fields_after;  // after the file part
  std::string content;  // the file's bytes when given; else `file_bytes` of a pattern
  uint64_t file_bytes = 0;
  bool chunked = false;
  bool expect_continue = false;
  bool send_body = true;  // false: the head only, then wait for the answer
};

struct UploadResult {
  int status = 0;
  std::string body;
  std::string sha256;  // of the file part as sent (hex)
  bool interim_continue = false;
};

std::string Hex(const unsigned char* bytes, unsigned size) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), static_cast<std::size_t>(size)));
}

bool SendAll(int fd, absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) {
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Reads one HTTP response (head, then a Content-Length body) from `fd`; `pending` keeps what
// was read past it.
bool ReadResponse(int fd, std::string& pending, int& status, std::string& body) {
  char buffer[65536];
  std::size_t head_end;
  while ((head_end = pending.find("\r\n\r\n")) == std::string::npos) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      return false;
    }
    pending.append(buffer, static_cast<std::size_t>(n));
  }
  const std::string head = pending.substr(0, head_end);
  pending.erase(0, head_end + 4);
  if (!absl::SimpleAtoi(head.substr(9, 3), &status)) {
    return false;
  }
  uint64_t length = 0;
  for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
    if (absl::StartsWithIgnoreCase(line, "content-length:")) {
      (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(15)), &length);
    }
  }
  while (pending.size() < length) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      return false;
    }
    pending.append(buffer, static_cast<std::size_t>(n));
  }
  body = pending.substr(0, length);
  pending.erase(0, length);
  return true;
}

UploadResult SendUpload(int port, const Upload& upload) {
  UploadResult result;
  std::string preamble;
  for (const auto& [name, value] : upload.fields) {
    absl::StrAppend(&preamble, "--", kBoundary, "\r\nContent-Disposition: form-data; name=\"", name,
                    "\"\r\n\r\n", value, "\r\n");
  }
  absl::StrAppend(&preamble, "--", kBoundary, "\r\nContent-Disposition: form-data; name=\"",
                  upload.file_field, "\"; filename=\"data.jsonl\"\r\n",
                  "Content-Type: application/octet-stream\r\n\r\n");
  std::string epilogue = "\r\n";
  for (const auto& [name, value] : upload.fields_after) {
    absl::StrAppend(&epilogue, "--", kBoundary, "\r\nContent-Disposition: form-data; name=\"", name,
                    "\"\r\n\r\n", value, "\r\n");
  }
  absl::StrAppend(&epilogue, "--", kBoundary, "--\r\n");
  const uint64_t file_bytes = upload.content.empty() ? upload.file_bytes : upload.content.size();
  std::string head =
      absl::StrCat("POST ", upload.target, " HTTP/1.1\r\nHost: agent\r\napi-key: ", upload.key,
                   "\r\nContent-Type: multipart/form-data; boundary=", kBoundary, "\r\n");
  if (upload.chunked) {
    head += "Transfer-Encoding: chunked\r\n";
  } else {
    absl::StrAppend(&head, "Content-Length: ", preamble.size() + file_bytes + epilogue.size(),
                    "\r\n");
  }
  if (upload.expect_continue) {
    head += "Expect: 100-continue\r\n";
  }
  head += "\r\n";

  const int fd = ConnectRaw(port, 60);
  if (fd < 0) {
    return result;
  }
  std::string pending;
  auto send_piece = [&](absl::string_view piece) {
    if (!upload.chunked) {
      return SendAll(fd, piece);
    }
    return SendAll(fd, absl::StrCat(absl::Hex(piece.size()), "\r\n", piece, "\r\n"));
  };
  bool sent = SendAll(fd, head);
  if (sent && upload.expect_continue) {
    std::string interim;
    ReadResponse(fd, pending, result.status, interim);
    result.interim_continue = result.status == 100;
    if (!result.interim_continue) {
      result.body = interim;
      ::close(fd);
      return result;
    }
  }
  if (sent && upload.send_body) {
    EVP_MD_CTX* sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(sha, EVP_sha256(), nullptr);
    sent = send_piece(preamble);
    std::string piece(64 * 1024, '\0');
    for (uint64_t offset = 0; sent && offset < file_bytes;) {
      const std::size_t n =
          static_cast<std::size_t>(std::min<uint64_t>(piece.size(), file_bytes - offset));
      if (upload.content.empty()) {
        for (std::size_t i = 0; i < n; ++i) {
          piece[i] = static_cast<char>('a' + (offset + i) % 23);
        }
      } else {
        piece.assign(upload.content, offset, n);
      }
      EVP_DigestUpdate(sha, piece.data(), n);
      sent = send_piece(absl::string_view(piece.data(), n));
      offset += n;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned digest_size = 0;
    EVP_DigestFinal_ex(sha, digest, &digest_size);
    EVP_MD_CTX_free(sha);
    result.sha256 = Hex(digest, digest_size);
    if (sent) {
      sent = send_piece(epilogue);
    }
    if (sent && upload.chunked) {
      sent = SendAll(fd, "0\r\n\r\n");
    }
  }
  // A refusal may come before the body was sent whole: its answer is read all the same.
  if (!ReadResponse(fd, pending, result.status, result.body)) {
    result.status = 0;
  }
  ::close(fd);
  return result;
}

// VmHWM (peak resident memory) of a process, in KiB; -1 when unreadable.
int64_t PeakRssKb(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, "VmHWM:")) {
      int64_t kb = -1;
      (void)absl::SimpleAtoi(
          absl::StripAsciiWhitespace(absl::StripSuffix(absl::string_view(line).substr(6), "kB")),
          &kb);
      return kb;
    }
  }
  return -1;
}

// Resets the peak to the current resident size (Linux: "5" to clear_refs).
bool ResetPeakRss(pid_t pid) {
  std::ofstream clear(absl::StrCat("/proc/", pid, "/clear_refs"));
  clear << "5";
  clear.flush();
  return clear.good();
}

class AgentUploadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* mock : {"a", "b"}) {
      ASSERT_TRUE(fleet_.AddMock(mock, {"--deployments", "gpt-4o,stt"}).ok());
    }
    ASSERT_TRUE(fleet_.StartAgent(kTopology, "eastus2").ok());
  }

  // The uploads each mock recorded (its stats' "uploads").
  std::map<std::string, boost::json::array> Uploads() {
    std::map<std::string, boost::json::array> uploads;
    for (const char* mock : {"a", "b"}) {
      const boost::json::object stats = MockStatsJson(fleet_, mock);
      if (const boost::json::value* list = stats.if_contains("uploads")) {
        uploads[mock] = list->as_array();
      } else {
        uploads[mock] = {};
      }
    }
    return uploads;
  }

  // The mock whose last upload has `sha256`; "" when none has it.
  std::string UploadedTo(const std::string& sha256, uint64_t bytes) {
    for (const auto& [mock, list] : Uploads()) {
      for (const boost::json::value& entry : list) {
        const boost::json::object& upload = entry.as_object();
        if (upload.at("sha256").as_string() == sha256 &&
            upload.at("bytes").to_number<uint64_t>() == bytes) {
          return mock;
        }
      }
    }
    return "";
  }

  HttpResponse Send(const std::string& method, const std::string& target,
                    const std::string& body = "") {
    absl::StatusOr<HttpResponse> r =
        fleet_.AgentClient()->Send(method, target, {{"api-key", kTenantKey}}, body);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : HttpResponse{};
  }

  AgentFleet fleet_;
};

TEST_F(AgentUploadsTest, AHundredMegabyteFileStreamsThroughWithoutTheAgentHoldingIt) {
  constexpr uint64_t kFileBytes = 100 * 1024 * 1024;
  const pid_t agent = fleet_.agent().pid();
  ASSERT_TRUE(ResetPeakRss(agent));
  const int64_t before_kb = PeakRssKb(agent);
  ASSERT_GT(before_kb, 0);
  Upload upload;
  upload.file_bytes = kFileBytes;
  const UploadResult result = SendUpload(fleet_.agent_port(), upload);
  ASSERT_EQ(result.status, 200) << result.body;
  const boost::json::object file = boost::json::parse(result.body).as_object();
  EXPECT_THAT(std::string(file.at("id").as_string()), ::testing::StartsWith("file-"));
  EXPECT_EQ(file.at("bytes").to_number<uint64_t>(), kFileBytes);
  EXPECT_NE(UploadedTo(result.sha256, kFileBytes), "") << "no backend got the file intact";
  const int64_t growth_kb = PeakRssKb(agent) - before_kb;
  EXPECT_LT(growth_kb, 8 * 1024) << "the agent's peak memory grew by " << growth_kb << " KiB for a "
                                 << kFileBytes << "-byte upload";
}

TEST_F(AgentUploadsTest, CallsOnAFileAndItsBatchReachTheBackendThatTookIt) {
  Upload upload;
  upload.fields = {{"purpose", "batch"}};
  upload.content =
      "{\"custom_id\":\"1\",\"method\":\"POST\",\"url\":\"/chat/completions\",\"body\":{}}\n"
      "{\"custom_id\":\"2\",\"method\":\"POST\",\"url\":\"/chat/completions\",\"body\":{}}\n";
  const UploadResult created = SendUpload(fleet_.agent_port(), upload);
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string id(boost::json::parse(created.body).at("id").as_string());
  const std::string owner = UploadedTo(created.sha256, upload.content.size());
  ASSERT_NE(owner, "");
  // The weights alone would send about half of these to the backend without the file.
  for (int i = 0; i < 6; ++i) {
    HttpResponse got = Send("GET", "/openai/v1/files/" + id);
    EXPECT_EQ(got.status, 200) << got.body;
  }
  HttpResponse batch =
      Send("POST", "/openai/v1/batches",
           absl::StrCat(R"({"input_file_id":")", id,
                        R"(","endpoint":"/chat/completions","completion_window":"24h"})"));
  ASSERT_EQ(batch.status, 200) << "the batch went where its input file is not: " << batch.body;
  const std::string batch_id(boost::json::parse(batch.body).at("id").as_string());
  HttpResponse polled = Send("GET", "/openai/v1/batches/" + batch_id);
  EXPECT_EQ(polled.status, 200) << polled.body;
  HttpResponse content = Send("GET", "/openai/v1/files/" + id + "/content");
  EXPECT_EQ(content.status, 200) << content.body;
  EXPECT_EQ(content.body, upload.content);
  HttpResponse deleted = Send("DELETE", "/openai/v1/files/" + id);
  EXPECT_EQ(deleted.status, 200) << deleted.body;
  HttpResponse gone = Send("GET", "/openai/v1/files/" + id);
  EXPECT_EQ(gone.status, 404) << gone.body;
  EXPECT_THAT(gone.body, HasSubstr("was deleted"));
}

TEST_F(AgentUploadsTest, ChunkedAndExpectContinueUploadsStreamToo) {
  Upload chunked;
  chunked.file_bytes = 3 * 1024 * 1024 + 17;
  chunked.chunked = true;
  const UploadResult sent = SendUpload(fleet_.agent_port(), chunked);
  ASSERT_EQ(sent.status, 200) << sent.body;
  EXPECT_NE(UploadedTo(sent.sha256, chunked.file_bytes), "");

  Upload expect;
  expect.file_bytes = 200 * 1024;
  expect.expect_continue = true;
  const UploadResult continued = SendUpload(fleet_.agent_port(), expect);
  EXPECT_TRUE(continued.interim_continue) << "no 100 Continue after the head was admitted";
  ASSERT_EQ(continued.status, 200) << continued.body;
  EXPECT_NE(UploadedTo(continued.sha256, expect.file_bytes), "");
}

TEST_F(AgentUploadsTest, RefusedUploadsAreAnsweredBeforeTheirBody) {
  // Each sends its head only: an answer proves the agent did not wait for the body.
  Upload too_large;
  too_large.target = "/openai/deployments/whisper/audio/transcriptions?api-version=2024-10-21";
  too_large.fields = {};
  too_large.file_bytes = 2 * 1024 * 1024;
  too_large.send_body = false;
  UploadResult refused = SendUpload(fleet_.agent_port(), too_large);
  EXPECT_EQ(refused.status, 413) << refused.body;
  EXPECT_THAT(refused.body, HasSubstr("route 'whisper''s limit of 1048576 bytes"));

  Upload wrong_key;
  wrong_key.key = "wrong";
  wrong_key.file_bytes = 30 * 1024 * 1024;
  wrong_key.send_body = false;
  refused = SendUpload(fleet_.agent_port(), wrong_key);
  EXPECT_EQ(refused.status, 401) << refused.body;

  // Chunked, the size is known only as it comes: cut off at the limit.
  Upload chunked = too_large;
  chunked.chunked = true;
  chunked.send_body = true;
  refused = SendUpload(fleet_.agent_port(), chunked);
  EXPECT_EQ(refused.status, 413) << refused.body;
  for (const auto& [mock, list] : Uploads()) {
    for (const boost::json::value& entry : list) {
      EXPECT_NE(entry.as_object().at("bytes").to_number<uint64_t>(), chunked.file_bytes)
          << mock << " got the whole oversized upload";
    }
  }
}

TEST_F(AgentUploadsTest, AudioByItsDeploymentPathIsStreamedToTheRoute) {
  Upload audio;
  audio.target = "/openai/deployments/whisper/audio/transcriptions?api-version=2024-10-21";
  audio.fields = {{"response_format", "json"}};
  audio.file_bytes = 300 * 1024;
  const UploadResult transcribed = SendUpload(fleet_.agent_port(), audio);
  ASSERT_EQ(transcribed.status, 200) << transcribed.body;
  EXPECT_TRUE(boost::json::parse(transcribed.body).as_object().contains("text"));
  EXPECT_NE(UploadedTo(transcribed.sha256, audio.file_bytes), "");

  Upload edit;
  edit.target = "/openai/deployments/whisper/images/edits?api-version=2025-04-01-preview";
  edit.file_field = "image";
  edit.fields = {{"prompt", "a red hat"}};
  edit.file_bytes = 100 * 1024;
  const UploadResult edited = SendUpload(fleet_.agent_port(), edit);
  ASSERT_EQ(edited.status, 200) << edited.body;
  EXPECT_TRUE(boost::json::parse(edited.body).as_object().contains("data"));
}

TEST_F(AgentUploadsTest, UploadsOnV1AreRoutedByTheirFormsModelField) {
  // The SDKs send the file first: the model comes after it, and is rewritten to the
  // backend's deployment ("stt"), which is all the backend knows.
  Upload audio;
  audio.target = "/openai/v1/audio/transcriptions";
  audio.fields = {};
  audio.fields_after = {{"model", "whisper"}, {"response_format", "json"}};
  audio.file_bytes = 700 * 1024;
  const UploadResult transcribed = SendUpload(fleet_.agent_port(), audio);
  ASSERT_EQ(transcribed.status, 200) << transcribed.body;
  EXPECT_TRUE(boost::json::parse(transcribed.body).as_object().contains("text"));
  EXPECT_NE(UploadedTo(transcribed.sha256, audio.file_bytes), "");

  Upload model_first = audio;
  model_first.fields = {{"model", "whisper"}};
  model_first.fields_after = {};
  model_first.target = "/openai/v1/audio/translations";
  const UploadResult translated = SendUpload(fleet_.agent_port(), model_first);
  EXPECT_EQ(translated.status, 200) << translated.body;

  Upload unknown = audio;
  unknown.fields_after = {{"model", "no-such-route"}};
  EXPECT_EQ(SendUpload(fleet_.agent_port(), unknown).status, 404);
  Upload no_model = audio;
  no_model.fields_after = {};
  const UploadResult refused = SendUpload(fleet_.agent_port(), no_model);
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_THAT(refused.body, HasSubstr("model"));
  // The route's own limit holds once the model names it.
  Upload too_large = model_first;
  too_large.file_bytes = 2 * 1024 * 1024;
  const UploadResult cut = SendUpload(fleet_.agent_port(), too_large);
  EXPECT_EQ(cut.status, 413) << cut.body;
  EXPECT_THAT(cut.body, HasSubstr("route 'whisper''s limit"));
}

TEST_F(AgentUploadsTest, AFormsReadAheadCountsAgainstTheBodyMemoryBudget) {
  ASSERT_TRUE(fleet_
                  .StartAgent(kTopology, "eastus2",
                              {"--body-limit", "1048576", "--body-memory-limit", "1048576"})
                  .ok());
  // One upload holds the whole budget while the agent reads ahead for its model.
  const int holder = ConnectRaw(fleet_.agent_port(), 10);
  ASSERT_GE(holder, 0);
  ASSERT_TRUE(
      SendAll(holder, absl::StrCat("POST /openai/v1/audio/transcriptions HTTP/1.1\r\nHost: a\r\n"
                                   "api-key: test\r\nContent-Type: multipart/form-data; boundary=",
                                   kBoundary, "\r\nContent-Length: 900000\r\n\r\n--", kBoundary,
                                   "\r\nContent-Disposition: form-data; name=\"file\"; "
                                   "filename=\"a.wav\"\r\n\r\n",
                                   std::string(4096, 'x'))));
  Upload audio;
  audio.target = "/openai/v1/audio/transcriptions";
  audio.fields = {};
  audio.fields_after = {{"model", "whisper"}};
  audio.file_bytes = 10 * 1024;
  UploadResult busy;
  // The holder's head may still be on its way: the refusal comes once it is read.
  for (int i = 0; i < 50 && busy.status != 503; ++i) {
    busy = SendUpload(fleet_.agent_port(), audio);
    if (busy.status != 503) {
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  EXPECT_EQ(busy.status, 503) << busy.body;
  ::close(holder);
  // The holder gone, its reservation is released.
  UploadResult served;
  for (int i = 0; i < 100 && served.status != 200; ++i) {
    served = SendUpload(fleet_.agent_port(), audio);
    if (served.status != 200) {
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  EXPECT_EQ(served.status, 200) << served.body;
}

}  // namespace
}  // namespace spillway::test
