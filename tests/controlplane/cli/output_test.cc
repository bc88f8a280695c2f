// The output formats: table alignment, CSV quoting, protobuf JSON.
#include "controlplane/cli/output.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "spillway/v1/admin.pb.h"

namespace spillway::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ParseOutputFormatTest, KnownFormatsAnyCase) {
  EXPECT_EQ(*ParseOutputFormat("table"), OutputFormat::kTable);
  EXPECT_EQ(*ParseOutputFormat("JSON"), OutputFormat::kJson);
  EXPECT_EQ(*ParseOutputFormat("yaml"), OutputFormat::kYaml);
  EXPECT_EQ(*ParseOutputFormat("csv"), OutputFormat::kCsv);
  EXPECT_THAT(ParseOutputFormat("xml").status().message(),
              HasSubstr("choose table, json, yaml or csv"));
  for (OutputFormat format :
       {OutputFormat::kTable, OutputFormat::kJson, OutputFormat::kYaml, OutputFormat::kCsv}) {
    EXPECT_EQ(*ParseOutputFormat(OutputFormatName(format)), format);
  }
}

TEST(RenderTableTest, PadsColumnsToTheWidestCellWithoutTrailingSpaces) {
  Table table;
  table.headers = {"NAME", "STAMP", "NOTE"};
  table.AddRow({"eastus2", "us", "x"});
  table.AddRow({"swedencentral", "eu", "longer note"});
  EXPECT_EQ(RenderTable(table),
            "NAME            STAMP   NOTE\n"
            "eastus2         us      x\n"
            "swedencentral   eu      longer note\n");
}

TEST(RenderTableTest, RightAlignsNumbersAndShowsEmptyCellsAsDash) {
  Table table;
  table.headers = {"TENANT", "REQUESTS", "REASON"};
  table.align = {Align::kLeft, Align::kRight};
  table.AddRow({"a", "5", ""});
  table.AddRow({"bb", "12345678", "429"});
  table.AddRow({"c"});  // short rows are padded with empty cells
  EXPECT_EQ(RenderTable(table),
            "TENANT   REQUESTS   REASON\n"
            "a               5   -\n"
            "bb       12345678   429\n"
            "c               -   -\n");
}

TEST(RenderTableTest, HeadersOnlyWhenThereAreNoRows) {
  Table table;
  table.headers = {"A", "B"};
  EXPECT_EQ(RenderTable(table), "A   B\n");
}

TEST(RenderCsvTest, QuotesWhatNeedsQuotingAndLowerCasesHeaders) {
  Table table;
  table.headers = {"TENANT", "ROUTE", "REQUESTS"};
  table.AddRow({"plain", "with,comma", "1"});
  table.AddRow({"say \"hi\"", "line\nbreak", "2"});
  table.AddRow({"", "carriage\rreturn"});
  EXPECT_EQ(RenderCsv(table),
            "tenant,route,requests\n"
            "plain,\"with,comma\",1\n"
            "\"say \"\"hi\"\"\",\"line\nbreak\",2\n"
            ",\"carriage\rreturn\",\n");
}

TEST(RenderJsonTest, UsesProtoFieldNamesAndRoundTrips) {
  v1::UsageQueryResponse response;
  v1::UsageRow* row = response.add_rows();
  (*row->mutable_key())["tenant"] = "checkout";
  row->set_prompt_tokens(12);
  absl::StatusOr<std::string> json = RenderJson(response);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"prompt_tokens\": \"12\""));
  EXPECT_THAT(*json, Not(HasSubstr("promptTokens")));
  EXPECT_THAT(*json, Not(HasSubstr("\"requests\"")));  // zero, left out by default
  EXPECT_EQ(json->back(), '\n');

  v1::UsageQueryResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*json, &parsed).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(parsed, response));
}

TEST(RenderJsonTest, AllFieldsPrintsZeroCounters) {
  v1::ListAgentsResponse response;
  response.add_agents()->set_agent_id("a");
  absl::StatusOr<std::string> json = RenderJson(response, /*all_fields=*/true);
  ASSERT_TRUE(json.ok());
  EXPECT_THAT(*json, HasSubstr("\"connected\": false"));
  EXPECT_THAT(*json, HasSubstr("\"current_version\": \"0\""));
}

}  // namespace
}  // namespace spillway::cli
