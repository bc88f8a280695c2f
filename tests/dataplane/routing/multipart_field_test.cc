// Finding the "model" field of a multipart upload as its body arrives.
#include "dataplane/routing/multipart_field.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace spillway {
namespace {

std::string Body(bool model_first) {
  const std::string file =
      "--b0\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
      "Content-Type: audio/wav\r\n\r\nRIFF\r\n-- not a delimiter --b\r\n";
  const std::string model =
      "--b0\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-eu\r\n";
  return absl::StrCat(model_first ? model : file, model_first ? file : model, "--b0--\r\n");
}

TEST(MultipartField, FindsTheFieldWhereverItComesAndHoweverTheBodyIsCut) {
  for (const bool model_first : {true, false}) {
    const std::string body = Body(model_first);
    const std::size_t value = body.find("whisper-eu");
    // Every split of the body into a prefix seen first, then the whole.
    for (std::size_t cut = 0; cut <= body.size(); ++cut) {
      MultipartFieldFinder finder("b0", "model");
      absl::StatusOr<std::optional<MultipartFieldFinder::Found>> first =
          finder.Scan(absl::string_view(body).substr(0, cut));
      ASSERT_TRUE(first.ok()) << cut << ": " << first.status();
      absl::StatusOr<std::optional<MultipartFieldFinder::Found>> found =
          first->has_value() ? first : finder.Scan(body);
      ASSERT_TRUE(found.ok()) << cut << ": " << found.status();
      ASSERT_TRUE(found->has_value()) << cut;
      EXPECT_EQ((*found)->offset, value) << cut;
      EXPECT_EQ((*found)->size, 10u) << cut;
      if (first->has_value()) {
        EXPECT_GE(cut, value + 10 + 4) << "found before the value's end was seen";
      }
    }
  }
}

TEST(MultipartField, AFileNamedLikeTheFieldIsNotIt) {
  const std::string body =
      "--b\r\nContent-Disposition: form-data; name=\"model\"; filename=\"m\"\r\n\r\nx\r\n"
      "--b\r\ncontent-disposition: form-data;name=model\r\n\r\ngpt\r\n--b--\r\n";
  MultipartFieldFinder finder("b", "model");
  absl::StatusOr<std::optional<MultipartFieldFinder::Found>> found = finder.Scan(body);
  ASSERT_TRUE(found.ok() && found->has_value()) << found.status();
  EXPECT_EQ(body.substr((*found)->offset, (*found)->size), "gpt");
}

TEST(MultipartField, BadBodiesAndMissingFieldsAreSaidSo) {
  MultipartFieldFinder missing("b", "model");
  absl::StatusOr<std::optional<MultipartFieldFinder::Found>> result =
      missing.Scan("--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--b--\r\n");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  MultipartFieldFinder wrong_start("b", "model");
  EXPECT_EQ(wrong_start.Scan("garbage and more garbage").status().code(),
            absl::StatusCode::kInvalidArgument);
  MultipartFieldFinder long_headers("b", "model");
  EXPECT_EQ(long_headers.Scan("--b\r\n" + std::string(20000, 'h')).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MultipartField, TheBoundaryComesFromTheContentType) {
  EXPECT_EQ(*MultipartBoundary("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(*MultipartBoundary("Multipart/Form-Data;Boundary=\"a b\""), "a b");
  for (const char* bad : {"application/json", "multipart/form-data", "multipart/form-data; x=1",
                          "multipart/form-data; boundary=\"\""}) {
    EXPECT_FALSE(MultipartBoundary(bad).ok()) << bad;
  }
  EXPECT_FALSE(MultipartBoundary("multipart/form-data; boundary=" + std::string(71, 'x')).ok());
}

}  // namespace
}  // namespace spillway
