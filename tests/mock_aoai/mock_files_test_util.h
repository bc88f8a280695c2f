// Shared by the files APIs' integration tests: multipart/form-data bodies, uploads, and the
// mock's upload log.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/mock_test_util.h"

namespace spillway::mock {

inline constexpr char kFormBoundary[] = "spillway-form-7f3a";

struct FormPart {
  std::string name;
  std::string content;
  std::string filename;  // set for a file part
};

inline FormPart Field(std::string name, std::string value) {
  return {std::move(name), std::move(value), ""};
}
inline FormPart FilePart(std::string name, std::string filename, std::string content) {
  return {std::move(name), std::move(content), std::move(filename)};
}

inline std::string FormBody(const std::vector<FormPart>& parts) {
  std::string body;
  for (const FormPart& part : parts) {
    absl::StrAppend(&body, "--", kFormBoundary, "\r\nContent-Disposition: form-data; name=\"",
                    part.name, "\"");
    if (!part.filename.empty()) {
      absl::StrAppend(&body, "; filename=\"", part.filename,
                      "\"\r\nContent-Type: application/octet-stream");
    }
    absl::StrAppend(&body, "\r\n\r\n", part.content, "\r\n");
  }
  absl::StrAppend(&body, "--", kFormBoundary, "--\r\n");
  return body;
}

inline test::HttpHeaders FormHeaders() {
  return {{"Content-Type", absl::StrCat("multipart/form-data; boundary=", kFormBoundary)}};
}

inline test::HttpResponse PostForm(test::HttpClient& client, absl::string_view target,
                                   const std::vector<FormPart>& parts) {
  return MustSend(client, "POST", target, FormBody(parts), FormHeaders());
}

// Uploads `content` as `filename` with `purpose` to `files` (a files collection path) and returns
// the file's id (empty, and a test failure, when refused).
inline std::string UploadFile(test::HttpClient& client, absl::string_view files,
                              absl::string_view purpose, absl::string_view content,
                              absl::string_view filename = "input.jsonl") {
  const test::HttpResponse created =
      PostForm(client, files,
               {Field("purpose", std::string(purpose)),
                FilePart("file", std::string(filename), std::string(content))});
  EXPECT_EQ(created.status, 200) << created.body;
  return created.status == 200 ? Str(Json(created.body).at("id")) : "";
}

inline boost::json::value MockStats(const test::MockAoaiProcess& mock) {
  test::HttpClient client = Client(mock);
  return Json(MustSend(client, "GET", "/mock/stats").body);
}

// {"error":{"message":...,"type":"invalid_request_error","param":...,"code":null}}
inline std::string OpenAiNotFound(absl::string_view message, absl::string_view param = "") {
  return absl::StrCat(
      R"({"error":{"message":")", message, R"(","type":"invalid_request_error","param":)",
      param.empty() ? "null" : absl::StrCat("\"", param, "\""), R"(,"code":null}})");
}

}  // namespace spillway::mock
