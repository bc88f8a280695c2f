// Multipart audio and image uploads against the real binary: by the deployment in the path and
// by the form's model, unknown deployments, missing parts, usage for gpt-4o transcription
// models, a decodable image, and the upload log naming the deployment.
#include <openssl/evp.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/mock_files_test_util.h"

namespace spillway::mock {
namespace {

using ::testing::HasSubstr;

const std::string kAudio(3000, '\x7f');

TEST(MockMediaTest, TranscriptionByPathAndByModel) {
  SPILLWAY_START_MOCK(mock, {"--deployments=whisper,mini:model=gpt-4o-mini-transcribe"});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse by_path =
      PostForm(client, DeploymentPath("whisper", "audio/transcriptions"),
               {FilePart("file", "a.wav", kAudio)});
  ASSERT_EQ(by_path.status, 200) << by_path.body;
  EXPECT_EQ(by_path.body, R"({"text":"transcribed 3000 bytes"})");
  EXPECT_TRUE(by_path.HasHeader("x-ratelimit-remaining-requests"));

  const test::HttpResponse by_model =
      PostForm(client, "/openai/v1/audio/transcriptions",
               {Field("model", "mini"), FilePart("file", "a.wav", kAudio)});
  ASSERT_EQ(by_model.status, 200) << by_model.body;
  const boost::json::value body = Json(by_model.body);
  EXPECT_EQ(Str(body.at("text")), "transcribed 3000 bytes");
  EXPECT_EQ(body.at("usage").at("input_token_details").at("audio_tokens").as_int64(), 3);
  EXPECT_EQ(Str(body.at("usage").at("type")), "tokens");

  const test::HttpResponse translated =
      PostForm(client, "/openai/v1/audio/translations",
               {FilePart("file", "a.wav", kAudio), Field("model", "whisper"),
                Field("response_format", "text")});
  ASSERT_EQ(translated.status, 200) << translated.body;
  EXPECT_EQ(translated.body, "translated 3000 bytes");
  EXPECT_THAT(translated.Header("content-type").value_or(""), HasSubstr("text/plain"));
  const test::HttpResponse dated = PostForm(client, DeploymentPath("whisper", "audio/translations"),
                                            {FilePart("file", "a.wav", "1234")});
  EXPECT_EQ(dated.body, R"({"text":"translated 4 bytes"})");

  const boost::json::value stats = MockStats(*mock);
  const boost::json::array& uploads = stats.at("uploads").as_array();
  ASSERT_EQ(uploads.size(), 4u);
  EXPECT_EQ(Str(uploads.at(0).at("deployment")), "whisper");
  EXPECT_EQ(Str(uploads.at(0).at("path")), "/openai/deployments/whisper/audio/transcriptions");
  EXPECT_EQ(Str(uploads.at(1).at("deployment")), "mini");
  EXPECT_EQ(uploads.at(1).at("bytes").as_int64(), 3000);
  EXPECT_EQ(stats.at("deployments").at("whisper").at("by_status").at("200").as_int64(), 3);
}

TEST(MockMediaTest, UnknownDeploymentsAndMissingParts) {
  SPILLWAY_START_MOCK(mock, {"--deployments=whisper"});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse path = PostForm(client, DeploymentPath("nope", "audio/transcriptions"),
                                           {FilePart("file", "a.wav", kAudio)});
  EXPECT_EQ(path.status, 404);
  EXPECT_THAT(path.body, HasSubstr("DeploymentNotFound"));
  const test::HttpResponse model =
      PostForm(client, "/openai/v1/images/edits",
               {Field("model", "nope"), Field("prompt", "p"), FilePart("image", "a.png", "x")});
  EXPECT_EQ(model.status, 404);
  EXPECT_THAT(model.body, HasSubstr("DeploymentNotFound"));
  const test::HttpResponse no_model =
      PostForm(client, "/openai/v1/audio/transcriptions", {FilePart("file", "a.wav", kAudio)});
  EXPECT_EQ(no_model.status, 400);
  EXPECT_THAT(no_model.body, HasSubstr("'model'"));
  const test::HttpResponse no_file = PostForm(
      client, DeploymentPath("whisper", "audio/transcriptions"), {Field("language", "en")});
  EXPECT_EQ(no_file.status, 400);
  EXPECT_THAT(no_file.body, HasSubstr("'file'"));
  const test::HttpResponse no_prompt = PostForm(client, DeploymentPath("whisper", "images/edits"),
                                                {FilePart("image", "a.png", "x")});
  EXPECT_EQ(no_prompt.status, 400);
  EXPECT_THAT(no_prompt.body, HasSubstr("'prompt'"));
  const test::HttpResponse json =
      MustSend(client, "POST", DeploymentPath("whisper", "audio/transcriptions"), "{}");
  EXPECT_EQ(json.status, 400);
  const test::HttpResponse unversioned =
      PostForm(client, "/openai/deployments/whisper/audio/transcriptions",
               {FilePart("file", "a.wav", kAudio)});
  EXPECT_EQ(unversioned.status, 404);
  EXPECT_EQ(MockStats(*mock).at("uploads_total").as_int64(), 0);
}

TEST(MockMediaTest, ImageEditsAnswerADecodablePng) {
  SPILLWAY_START_MOCK(mock, {"--deployments=gpt-image-1"});
  test::HttpClient client = Client(*mock);
  for (const std::string& target :
       {DeploymentPath("gpt-image-1", "images/edits"), std::string("/openai/v1/images/edits")}) {
    const test::HttpResponse edited = PostForm(
        client, target,
        {Field("model", "gpt-image-1"), Field("prompt", "a cat"), Field("n", "2"),
         FilePart("image[]", "in.png", std::string(1000, 'i')), FilePart("mask", "mask.png", "m")});
    ASSERT_EQ(edited.status, 200) << target << ": " << edited.body;
    const boost::json::value body = Json(edited.body);
    EXPECT_GT(body.at("created").as_int64(), 1'600'000'000);
    ASSERT_EQ(body.at("data").as_array().size(), 2u);
    const std::string b64 = Str(body.at("data").at(0).at("b64_json"));
    std::string png(b64.size(), '\0');
    const int size = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(png.data()),
                                     reinterpret_cast<const unsigned char*>(b64.data()),
                                     static_cast<int>(b64.size()));
    ASSERT_GT(size, 8) << b64;
    EXPECT_EQ(png.substr(0, 8), "\x89PNG\r\n\x1a\n");
  }
  const boost::json::value stats = MockStats(*mock);
  const boost::json::array& uploads = stats.at("uploads").as_array();
  ASSERT_EQ(uploads.size(), 4u);  // image and mask, twice
  EXPECT_EQ(Str(uploads.at(0).at("field")), "image[]");
  EXPECT_EQ(uploads.at(0).at("bytes").as_int64(), 1000);
  EXPECT_EQ(Str(uploads.at(1).at("field")), "mask");
  EXPECT_EQ(Str(uploads.at(3).at("deployment")), "gpt-image-1");
}

}  // namespace
}  // namespace spillway::mock
