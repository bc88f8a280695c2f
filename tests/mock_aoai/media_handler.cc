// Multipart audio and image uploads (files_api.h): served like chat completions (deployment
// checks, faults, one request charged), answered with a text that names the bytes received
// and a 1x1 PNG.
#include <openssl/evp.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/mock_aoai/files_api.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

// A transparent 1x1 RGBA PNG: the smallest image an SDK decodes without complaint.
constexpr unsigned char kPng[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
    0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
    0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0b, 0x49, 0x44, 0x41, 0x54, 0x78,
    0x9c, 0x63, 0x60, 0x00, 0x02, 0x00, 0x00, 0x05, 0x00, 0x01, 0x7a, 0x5e, 0xab, 0x3f,
    0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

const std::string& PngBase64() {
  static const std::string* const encoded = [] {
    auto* out = new std::string(4 * ((sizeof(kPng) + 2) / 3) + 1, '\0');
    const int size = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out->data()), kPng,
                                     static_cast<int>(sizeof(kPng)));
    out->resize(static_cast<size_t>(size));
    return out;
  }();
  return *encoded;
}

absl::string_view OperationName(MediaOperation media) {
  switch (media) {
    case MediaOperation::kTranscriptions:
      return "AudioTranscriptions_Create";
    case MediaOperation::kTranslations:
      return "AudioTranslations_Create";
    case MediaOperation::kImageEdits:
      return "ImageEdits_Create";
  }
  return "Unknown";
}

// The form's required parts, or the message of the 400.
std::string MissingPart(MediaOperation media, const UploadSink& upload) {
  if (media != MediaOperation::kImageEdits) {
    return upload.File("file") == nullptr ? "'file' is a required property" : "";
  }
  if (upload.File("image") == nullptr && upload.File("image[]") == nullptr) {
    return "'image' is a required property";
  }
  return upload.Field("prompt").has_value() ? "" : "'prompt' is a required property";
}

// {"text":...}, plain text for response_format text/srt/vtt; gpt-4o transcription models add
// their token usage, as the service does.
void AnswerAudio(ApiAnswer& answer, const Deployment& deployment, MediaOperation media,
                 const UploadSink& upload) {
  const uint64_t bytes = upload.File("file")->bytes;
  const std::string text = absl::StrCat(
      media == MediaOperation::kTranscriptions ? "transcribed " : "translated ", bytes, " bytes");
  const absl::string_view format = upload.Field("response_format").value_or("json");
  if (format == "text" || format == "srt" || format == "vtt") {
    answer.FinishBody("text/plain; charset=utf-8", text);
    return;
  }
  json::object body{{"text", text}};
  if (absl::StrContains(deployment.spec.model, "gpt-4o")) {
    const int64_t audio_tokens = std::max<int64_t>(1, static_cast<int64_t>(bytes / 1000));
    const int64_t output_tokens = 4;
    body["usage"] = json::object{
        {"type", "tokens"},
        {"input_tokens", audio_tokens},
        {"input_token_details", json::object{{"text_tokens", 0}, {"audio_tokens", audio_tokens}}},
        {"output_tokens", output_tokens},
        {"total_tokens", audio_tokens + output_tokens}};
  }
  answer.FinishBody(kJson, json::serialize(body));
}

void AnswerImage(ApiAnswer& answer, const UploadSink& upload) {
  int64_t n = 1;
  if (const auto given = upload.Field("n"); given.has_value() && absl::SimpleAtoi(*given, &n)) {
    n = std::clamp<int64_t>(n, 1, 10);
  }
  json::array data;
  for (int64_t i = 0; i < n; ++i) {
    data.push_back(json::object{{"b64_json", PngBase64()}});
  }
  answer.FinishBody(kJson,
                    json::serialize(json::object{{"created", absl::ToUnixSeconds(answer.arrival())},
                                                 {"data", std::move(data)}}));
}

}  // namespace

void ServeMedia(FilesCall& call) {
  ApiAnswer& answer = call.answer();
  const Route& route = call.route();
  // The dated surface names the deployment in the path: checked before the form, as for chat.
  Deployment* deployment = route.v1 ? nullptr : call.state().Find(route.deployment);
  if (!route.v1 && deployment == nullptr) {
    answer.Fail(404, route.deployment, "DeploymentNotFound", kDeploymentNotFound);
    return;
  }
  std::string error;
  const UploadSink* upload = call.Upload(error);
  if (upload == nullptr) {
    answer.Fail(400, route.deployment, "BadRequest", error);
    return;
  }
  if (route.v1) {
    const absl::string_view model = upload->Field("model").value_or("");
    if (model.empty()) {
      answer.Fail(400, "", "BadRequest", "'model' is a required property");
      return;
    }
    deployment = call.state().Find(model);
    if (deployment == nullptr) {
      answer.Fail(404, model, "DeploymentNotFound", kDeploymentNotFound);
      return;
    }
  }
  const absl::string_view name = deployment->spec.name;
  if (const std::string missing = MissingPart(route.media, *upload); !missing.empty()) {
    answer.Fail(400, name, "BadRequest", missing);
    return;
  }
  const absl::string_view operation = OperationName(route.media);
  absl::string_view fault;
  if (answer.TakeFault(*deployment, operation, route.api_version, false, fault)) {
    return;
  }
  // One request, one token: uploads are limited by RPM, as Azure limits Whisper.
  LimitSnapshot limits;
  if (!answer.Admit(*deployment, 1, 0, operation, route.api_version, false, limits)) {
    return;
  }
  call.LogUpload(*upload, name);
  answer.StartHead(200, &limits);
  answer.Record(name, 200, false, fault);
  call.state().stats().BeginAnswer(name);
  if (route.media == MediaOperation::kImageEdits) {
    AnswerImage(answer, *upload);
  } else {
    AnswerAudio(answer, *deployment, route.media, *upload);
  }
  answer.reply().first_byte_delay = call.state().config().ttft;
}

}  // namespace spillway::mock
