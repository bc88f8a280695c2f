// The incremental multipart/form-data parser and the upload sink over it: whole and split
// bodies (the boundary cut at every byte), content that nearly holds the delimiter, padding,
// preamble and epilogue, malformed and over-bound input, boundaries, digests and line counts.
#include "tests/mock_aoai/multipart.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/upload.h"

namespace spillway::mock {
namespace {

constexpr char kBoundary[] = "XyZ-boundary-42";

// Every event as text; data pieces are joined, so any split of the input records the same.
class Recorder : public MultipartHandler {
 public:
  void OnPartBegin(const MultipartPartHeaders& headers) override {
    absl::StrAppend(&events, "[", headers.name, headers.has_filename ? "|" : "", headers.filename,
                    headers.content_type.empty() ? "" : "|", headers.content_type, "]");
  }
  void OnPartData(absl::string_view data) override { absl::StrAppend(&events, data); }
  void OnPartEnd() override { events += "[end]"; }
  std::string events;
};

std::string Part(absl::string_view headers, absl::string_view content) {
  return absl::StrCat("--", kBoundary, "\r\n", headers, "\r\n\r\n", content, "\r\n");
}

std::string Closing() { return absl::StrCat("--", kBoundary, "--\r\n"); }

// Content that holds every prefix of the delimiter without the whole of it.
std::string Tricky() {
  return absl::StrCat("a\r\nb\r\n-c\r\n--d\r\n--XyZ-boundary-4\r\n--XyZ-boundary\r", "\r\n\r\n--",
                      "XyZ-boundary-43");
}

std::string Form() {
  return absl::StrCat(
      Part("Content-Disposition: form-data; name=\"purpose\"", "batch"),
      Part("Content-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n"
           "Content-Type: application/jsonl",
           Tricky()),
      Closing());
}

std::string Expected() {
  return absl::StrCat("[purpose]batch[end][file|in.jsonl|application/jsonl]", Tricky(), "[end]");
}

struct Parsed {
  bool ok = false;
  std::string events;
  std::string error;
};

Parsed ParsePieces(const std::vector<absl::string_view>& pieces) {
  Recorder recorder;
  MultipartParser parser(kBoundary, recorder);
  Parsed parsed;
  parsed.ok = true;
  for (const absl::string_view piece : pieces) {
    parsed.ok = parser.Feed(piece) && parsed.ok;
  }
  parsed.ok = parser.Finish() && parsed.ok;
  parsed.events = recorder.events;
  parsed.error = parser.error();
  return parsed;
}

Parsed Parse(absl::string_view body) { return ParsePieces({body}); }

TEST(MultipartTest, ParsesFieldsAndFiles) {
  const Parsed parsed = Parse(Form());
  EXPECT_TRUE(parsed.ok) << parsed.error;
  EXPECT_EQ(parsed.events, Expected());
}

TEST(MultipartTest, SplitAtEveryByteGivesTheSameParts) {
  const std::string body = Form();
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    const absl::string_view all = body;
    const Parsed parsed = ParsePieces({all.substr(0, cut), all.substr(cut)});
    ASSERT_TRUE(parsed.ok) << "cut at " << cut << ": " << parsed.error;
    ASSERT_EQ(parsed.events, Expected()) << "cut at " << cut;
  }
  // Three pieces, the middle one short, around every position.
  for (size_t cut = 0; cut + 3 <= body.size(); ++cut) {
    const absl::string_view all = body;
    const Parsed parsed =
        ParsePieces({all.substr(0, cut), all.substr(cut, 3), all.substr(cut + 3)});
    ASSERT_EQ(parsed.events, Expected()) << "cut at " << cut;
  }
}

TEST(MultipartTest, ByteByByte) {
  const std::string body = Form();
  std::vector<absl::string_view> bytes;
  for (size_t i = 0; i < body.size(); ++i) {
    bytes.push_back(absl::string_view(body).substr(i, 1));
  }
  const Parsed parsed = ParsePieces(bytes);
  EXPECT_TRUE(parsed.ok) << parsed.error;
  EXPECT_EQ(parsed.events, Expected());
}

TEST(MultipartTest, PreambleEpiloguePaddingAndEmptyContent) {
  const std::string body =
      absl::StrCat("This is the preamble.\r\n--", kBoundary, " \t\r\n",
                   "content-disposition: FORM-DATA; NAME=empty\r\n\r\n\r\n",
                   Part("Content-Disposition: form-data; name=\"f\"; filename=\"\"", ""), "--",
                   kBoundary, "--\r\nepilogue, with --", kBoundary, " in it");
  const Parsed parsed = Parse(body);
  EXPECT_TRUE(parsed.ok) << parsed.error;
  EXPECT_EQ(parsed.events, "[empty][end][f|][end]");
}

TEST(MultipartTest, QuotedNamesKeepTheirEscapes) {
  const Parsed parsed = Parse(absl::StrCat(
      Part(R"(Content-Disposition: form-data; name="file"; filename="a \"b\"; c.wav")", "x"),
      Closing()));
  EXPECT_TRUE(parsed.ok) << parsed.error;
  EXPECT_EQ(parsed.events, "[file|a \"b\"; c.wav]x[end]");
}

TEST(MultipartTest, RefusesMalformedBodies) {
  const std::string part = Part("Content-Disposition: form-data; name=\"a\"", "1");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"no closing", part},
      {"no boundary at all", "just text"},
      {"junk after boundary", absl::StrCat("--", kBoundary, "x\r\n")},
      {"CR without LF", absl::StrCat("--", kBoundary, "\r-")},
      {"no disposition", absl::StrCat(Part("Content-Type: text/plain", "1"), Closing())},
      {"not form-data",
       absl::StrCat(Part("Content-Disposition: attachment; name=a", "1"), Closing())},
      {"no name", absl::StrCat(Part("Content-Disposition: form-data", "1"), Closing())},
      {"header without colon", absl::StrCat(Part("Content-Disposition", "1"), Closing())},
      {"headers too long",
       absl::StrCat(Part(absl::StrCat("Content-Disposition: form-data; name=a\r\nX-Pad: ",
                                      std::string(MultipartParser::kMaxHeaderBytes, 'p')),
                         "1"),
                    Closing())},
  };
  for (const auto& [name, body] : cases) {
    const Parsed parsed = Parse(body);
    EXPECT_FALSE(parsed.ok) << name;
    EXPECT_FALSE(parsed.error.empty()) << name;
  }
  std::string many;
  for (size_t i = 0; i <= MultipartParser::kMaxParts; ++i) {
    many += part;
  }
  EXPECT_FALSE(Parse(absl::StrCat(many, Closing())).ok);
}

TEST(MultipartTest, Boundaries) {
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(MultipartBoundary("Multipart/Form-Data;boundary=\"a b:c\""), "a b:c");
  EXPECT_EQ(MultipartBoundary("multipart/form-data; charset=utf-8; boundary=----x"), "----x");
  EXPECT_EQ(MultipartBoundary(absl::StrCat("multipart/form-data; boundary=", std::string(70, 'b'))),
            std::string(70, 'b'));
  EXPECT_FALSE(
      MultipartBoundary(absl::StrCat("multipart/form-data; boundary=", std::string(71, 'b'))));
  EXPECT_FALSE(MultipartBoundary("multipart/form-data"));
  EXPECT_FALSE(MultipartBoundary("multipart/form-data; boundary=\"\""));
  EXPECT_FALSE(MultipartBoundary("multipart/form-data; boundary=\"ends \""));
  EXPECT_FALSE(MultipartBoundary("multipart/form-data; boundary=\"a{b\""));
  EXPECT_FALSE(MultipartBoundary("multipart/mixed; boundary=abc"));
  EXPECT_FALSE(MultipartBoundary("application/json"));
}

TEST(UploadSinkTest, HashesCountsAndKeepsSmallFiles) {
  UploadLimits limits;
  limits.keep_bytes = 8;
  UploadSink sink(kBoundary, limits);
  const std::string body =
      absl::StrCat(Part("Content-Disposition: form-data; name=\"purpose\"", "batch"),
                   Part("Content-Disposition: form-data; name=\"file\"; filename=\"a\"", "abc"),
                   Part("Content-Disposition: form-data; name=\"big\"; filename=\"b\"",
                        "{\"x\":1}\n\n  \n{\"x\":2}\r\n{\"x\":3}"),
                   Closing());
  for (size_t i = 0; i < body.size(); i += 5) {
    sink.Feed(absl::string_view(body).substr(i, 5));
  }
  sink.Finish();
  ASSERT_TRUE(sink.ok()) << sink.error();
  EXPECT_EQ(sink.body_bytes(), body.size());
  EXPECT_EQ(sink.Field("purpose"), "batch");
  EXPECT_FALSE(sink.Field("file").has_value());
  const UploadedFile* small = sink.File("file");
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(small->bytes, 3u);
  EXPECT_EQ(small->sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(small->content_kept);
  EXPECT_EQ(small->content, "abc");
  EXPECT_EQ(small->lines, 1u);
  const UploadedFile* big = sink.File("big");
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(big->lines, 3u);
  EXPECT_FALSE(big->content_kept);
  EXPECT_EQ(big->content, "");
}

TEST(UploadSinkTest, RefusesMalformedAndOversizedForms) {
  UploadLimits limits;
  limits.field_bytes = 4;
  UploadSink long_field(kBoundary, limits);
  long_field.Feed(
      absl::StrCat(Part("Content-Disposition: form-data; name=\"p\"", "12345"), Closing()));
  long_field.Finish();
  EXPECT_FALSE(long_field.ok());

  UploadSink unfinished(kBoundary);
  unfinished.Feed(Part("Content-Disposition: form-data; name=\"p\"", "1"));
  unfinished.Finish();
  EXPECT_FALSE(unfinished.ok());
  EXPECT_NE(unfinished.error().find("closing boundary"), std::string::npos);
}

}  // namespace
}  // namespace spillway::mock
