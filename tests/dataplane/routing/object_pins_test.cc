// ObjectPins: lookups and expiry, the log across restarts (torn tails, compaction, a writer
// that falls behind), eviction at max_pins, concurrent use, and a million pins' footprint.
// Also the log's record codec on its own.
#include "dataplane/routing/object_pins.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "dataplane/routing/object_pin_record.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace spillway {
namespace {

constexpr int64_t kStart = 1'700'000'000;
constexpr uint64_t kHeaderBytes = 8;
constexpr uint64_t kPinRecordBytes = 39;

std::string Id(int i) { return absl::StrFormat("resp_%08x", i); }

PinOwner Owner(std::string backend, std::string tenant, int64_t expires_unix_s) {
  return PinOwner{std::move(backend), std::move(tenant), expires_unix_s};
}

std::size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t total_pages = 0;
  std::size_t resident_pages = 0;
  statm >> total_pages >> resident_pages;
  return resident_pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

class ObjectPinsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<test::ScopedTempDir> dir = test::ScopedTempDir::Create();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(std::move(*dir));
    path_ = dir_->path() + "/object-pins.log";
  }

  // Durable at path_ unless `path` says otherwise; the clock is now_.
  ObjectPinsOptions Options(std::optional<std::string> path = std::nullopt) {
    ObjectPinsOptions options;
    options.path = path.value_or(path_);
    options.now_unix_s = [this] { return now_.load(); };
    return options;
  }

  std::unique_ptr<ObjectPins> OpenPins(ObjectPinsOptions options) {
    absl::StatusOr<std::unique_ptr<ObjectPins>> pins = ObjectPins::Open(std::move(options));
    EXPECT_TRUE(pins.ok()) << pins.status();
    return pins.ok() ? std::move(*pins) : nullptr;
  }

  // The log as a crash would leave it now: a copy, opened by a new instance.
  std::unique_ptr<ObjectPins> OpenCrashCopy() {
    const std::string copy = path_ + ".crash";
    std::filesystem::copy_file(path_, copy, std::filesystem::copy_options::overwrite_existing);
    return OpenPins(Options(copy));
  }

  uint64_t FileSize() const { return std::filesystem::file_size(path_); }

  std::optional<test::ScopedTempDir> dir_;
  std::string path_;
  std::atomic<int64_t> now_{kStart};
};

TEST_F(ObjectPinsTest, PinFindUnpin) {
  std::unique_ptr<ObjectPins> pins = OpenPins(Options(""));
  pins->Pin("resp_a", Owner("aoai-east/gpt-4o", "team-a", kStart + 3600));

  std::optional<PinOwner> owner = pins->Find("resp_a");
  ASSERT_TRUE(owner.has_value());
  EXPECT_EQ(owner->backend_id, "aoai-east/gpt-4o");
  EXPECT_EQ(owner->tenant, "team-a");
  EXPECT_EQ(owner->expires_unix_s, kStart + 3600);
  EXPECT_FALSE(pins->Find("resp_b").has_value());
  EXPECT_FALSE(pins->Find("resp_a ").has_value());

  pins->Pin("resp_a", Owner("aoai-west/gpt-4o", "team-a", kStart + 7200));  // replaces
  EXPECT_EQ(pins->size(), 1u);
  EXPECT_EQ(pins->Find("resp_a")->backend_id, "aoai-west/gpt-4o");

  pins->Unpin("resp_a");
  pins->Unpin("resp_never_pinned");
  EXPECT_FALSE(pins->Find("resp_a").has_value());
  EXPECT_EQ(pins->size(), 0u);
}

// Records what ObjectPins tells its listener.
class RecordingListener : public PinListener {
 public:
  void OnPinned(absl::string_view digest, const PinOwner& owner) override {
    events.push_back(absl::StrCat("pin ", absl::BytesToHexString(digest), " ", owner.backend_id));
  }
  void OnUnpinned(absl::string_view digest) override {
    events.push_back(absl::StrCat("unpin ", absl::BytesToHexString(digest)));
  }
  std::vector<std::string> events;
};

// What this agent learns goes to its listener (and on to the region's other agents); what it is
// told by digest does not, or two agents would echo each pin back and forth.
TEST_F(ObjectPinsTest, TheListenerHearsOfLocalPinsOnlyAndDigestsStandForIds) {
  std::unique_ptr<ObjectPins> pins = OpenPins(Options(""));
  RecordingListener listener;
  pins->set_listener(&listener);
  const std::optional<std::string> digest = ObjectPins::DigestOf("resp_a");
  ASSERT_TRUE(digest.has_value());
  ASSERT_EQ(digest->size(), ObjectPins::kDigestBytes);
  EXPECT_EQ(*ObjectPins::DigestOf("resp_a"), *digest) << "the same id, the same digest";
  EXPECT_NE(*ObjectPins::DigestOf("resp_b"), *digest);

  pins->Pin("resp_a", Owner("aoai-east/gpt-4o", "team-a", kStart + 3600));
  pins->Unpin("resp_a");
  const std::string hex = absl::BytesToHexString(*digest);
  EXPECT_EQ(listener.events,
            (std::vector<std::string>{"pin " + hex + " aoai-east/gpt-4o", "unpin " + hex}));

  // A pin told by digest is found by the id it stands for, and not echoed.
  listener.events.clear();
  EXPECT_TRUE(pins->PinDigest(*digest, Owner("aoai-west/gpt-4o", "team-a", kStart + 60)));
  ASSERT_TRUE(pins->Find("resp_a").has_value());
  EXPECT_EQ(pins->Find("resp_a")->backend_id, "aoai-west/gpt-4o");
  pins->UnpinDigest(*digest);
  EXPECT_FALSE(pins->Find("resp_a").has_value());
  EXPECT_TRUE(listener.events.empty());

  // Not a digest: refused, nothing pinned.
  EXPECT_FALSE(pins->PinDigest("short", Owner("aoai-west/gpt-4o", "team-a", kStart + 60)));
  EXPECT_EQ(pins->size(), 0u);
  pins->set_listener(nullptr);
}

TEST_F(ObjectPinsTest, ExpiryFollowsTheInjectedClock) {
  std::unique_ptr<ObjectPins> pins = OpenPins(Options(""));
  pins->Pin("resp_short", Owner("b/d", "t", kStart + 10));
  pins->Pin("file-forever", Owner("b/d", "t", kPinNeverExpires));

  now_ = kStart + 9;
  EXPECT_TRUE(pins->Find("resp_short").has_value());
  now_ = kStart + 10;
  EXPECT_FALSE(pins->Find("resp_short").has_value());
  now_ = int64_t{1} << 40;
  EXPECT_TRUE(pins->Find("file-forever").has_value());

  // An owner that has already expired unpins instead of pinning.
  pins->Pin("file-forever", Owner("b/d", "t", now_ - 1));
  EXPECT_FALSE(pins->Find("file-forever").has_value());
  EXPECT_EQ(pins->size(), 1u);  // resp_short stays in memory until swept
}

TEST_F(ObjectPinsTest, OwnerStringsRoundTripThroughTheLog) {
  const std::vector<PinOwner> owners = {
      Owner("aoai-sweden/gpt-4o-2024-08-06", "team-a", kStart + 100),
      Owner("aoai-sweden/gpt-4o-2024-08-06", "", kPinNeverExpires),  // open-access mode
      Owner("aoai-japan/o3", "équipe-ü", kStart + 200),
      Owner(std::string(1024, 'b'), std::string(1024, 't'), kStart + 300),
  };
  {
    std::unique_ptr<ObjectPins> pins = OpenPins(Options());
    for (std::size_t i = 0; i < owners.size(); ++i) {
      pins->Pin(Id(static_cast<int>(i)), owners[i]);
    }
    pins->Pin("resp_too_long", Owner(std::string(1025, 'b'), "t", kStart + 100));
    EXPECT_EQ(pins->stats().rejected, 1u);
    EXPECT_FALSE(pins->Find("resp_too_long").has_value());
    EXPECT_EQ(pins->stats().strings, 7u);  // each distinct string once
  }
  std::unique_ptr<ObjectPins> pins = OpenPins(Options());
  for (std::size_t i = 0; i < owners.size(); ++i) {
    std::optional<PinOwner> owner = pins->Find(Id(static_cast<int>(i)));
    ASSERT_TRUE(owner.has_value()) << i;
    EXPECT_EQ(owner->backend_id, owners[i].backend_id);
    EXPECT_EQ(owner->tenant, owners[i].tenant);
    EXPECT_EQ(owner->expires_unix_s, owners[i].expires_unix_s);
  }
}

TEST_F(ObjectPinsTest, FlushedPinsAndUnpinsSurviveACrash) {
  std::unique_ptr<ObjectPins> pins = OpenPins(Options());
  pins->Pin("resp_a", Owner("east/gpt", "t1", kStart + 100));
  pins->Pin("conv_b", Owner("west/gpt", "t2", kStart + 100));
  pins->Pin("file-c", Owner("east/gpt", "t1", kPinNeverExpires));
  pins->Unpin("conv_b");
  ASSERT_TRUE(pins->Flush().ok());

  std::unique_ptr<ObjectPins> restarted = OpenCrashCopy();
  EXPECT_EQ(restarted->size(), 2u);
  EXPECT_EQ(restarted->Find("resp_a")->backend_id, "east/gpt");
  EXPECT_FALSE(restarted->Find("conv_b").has_value());
  EXPECT_EQ(restarted->Find("file-c")->tenant, "t1");
  EXPECT_EQ(restarted->stats().load_ignored_bytes, 0u);
}

TEST_F(ObjectPinsTest, TheWriterThreadFlushesByItself) {
  ObjectPinsOptions options = Options();
  options.flush_interval = absl::Milliseconds(10);
  std::unique_ptr<ObjectPins> pins = OpenPins(options);
  pins->Pin("batch_1", Owner("east/gpt", "t", kStart + 100));
  for (int i = 0; i < 500 && pins->stats().file_bytes < kHeaderBytes + kPinRecordBytes; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(pins->stats().pending_bytes, 0u);
  EXPECT_TRUE(OpenCrashCopy()->Find("batch_1").has_value());
}

TEST_F(ObjectPinsTest, ExpiredPinsAreGoneAfterReopen) {
  {
    std::unique_ptr<ObjectPins> pins = OpenPins(Options());
    pins->Pin("resp_short", Owner("b/d", "t", kStart + 100));
    pins->Pin("resp_long", Owner("b/d", "t", kStart + 10'000));
  }
  now_ = kStart + 1000;
  std::unique_ptr<ObjectPins> pins = OpenPins(Options());
  EXPECT_EQ(pins->size(), 1u);
  EXPECT_FALSE(pins->Find("resp_short").has_value());
  EXPECT_TRUE(pins->Find("resp_long").has_value());
}

TEST_F(ObjectPinsTest, ATornTailLoadsEveryCompleteRecord) {
  {
    std::unique_ptr<ObjectPins> pins = OpenPins(Options());
    for (int i = 0; i < 100; ++i) {
      pins->Pin(Id(i), Owner("east/gpt", "t", kStart + 100));
    }
  }
  // A crash in the middle of the last record, then junk where the rest would have gone.
  std::filesystem::resize_file(path_, FileSize() - 3);
  std::ofstream(path_, std::ios::binary | std::ios::app) << "garbage!";

  std::vector<int> missing;
  {
    std::unique_ptr<ObjectPins> pins = OpenPins(Options());
    for (int i = 0; i < 100; ++i) {
      if (!pins->Find(Id(i)).has_value()) {
        missing.push_back(i);
      }
    }
    ASSERT_EQ(missing.size(), 1u);
    EXPECT_EQ(pins->stats().load_ignored_bytes, kPinRecordBytes - 3 + 8);
    EXPECT_EQ(pins->stats().loaded_records, 2u + 99u);  // two strings, 99 pins
    pins->Pin(Id(missing[0]), Owner("east/gpt", "t", kStart + 100));
  }
  // The junk was cut off, so what was appended after it is found.
  std::unique_ptr<ObjectPins> pins = OpenPins(Options());
  EXPECT_EQ(pins->stats().load_ignored_bytes, 0u);
  EXPECT_EQ(pins->size(), 100u);
  EXPECT_TRUE(pins->Find(Id(missing[0])).has_value());
}

TEST_F(ObjectPinsTest, AFileThatIsNotAPinLogIsAnErrorNamingIt) {
  std::ofstream(path_) << "{\"not\": \"a pin log\"}";
  absl::StatusOr<std::unique_ptr<ObjectPins>> pins = ObjectPins::Open(Options());
  ASSERT_FALSE(pins.ok());
  EXPECT_EQ(pins.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(pins.status().message().find(path_), std::string::npos) << pins.status();

  const std::string nowhere = dir_->path() + "/missing-dir/pins.log";
  pins = ObjectPins::Open(Options(nowhere));
  ASSERT_FALSE(pins.ok());
  EXPECT_NE(pins.status().message().find(nowhere), std::string::npos) << pins.status();
}

TEST_F(ObjectPinsTest, AnEmptyOrHeaderOnlyFileIsAnEmptyLog) {
  std::ofstream(path_) << "SPW";  // the header itself was cut short
  std::unique_ptr<ObjectPins> pins = OpenPins(Options());
  EXPECT_EQ(pins->size(), 0u);
  pins->Pin("vs_1", Owner("b/d", "", kPinNeverExpires));
  pins.reset();
  EXPECT_TRUE(OpenPins(Options())->Find("vs_1").has_value());
}

TEST_F(ObjectPinsTest, CompactionShrinksTheLog) {
  ObjectPinsOptions options = Options();
  options.compact_min_bytes = 0;
  options.flush_interval = absl::Hours(1);  // only Flush and Close write
  {
    std::unique_ptr<ObjectPins> pins = OpenPins(options);
    for (int i = 0; i < 1000; ++i) {
      pins->Pin(Id(i), Owner("east/gpt", "t", kStart + 100));
    }
    for (int i = 100; i < 1000; ++i) {
      pins->Unpin(Id(i));
    }
  }
  const uint64_t before = FileSize();
  std::unique_ptr<ObjectPins> pins = OpenPins(options);
  EXPECT_EQ(pins->stats().compactions, 1u);
  const uint64_t strings_bytes = 2 * (6 + 5) + std::string("east/gpt").size() + 1;
  EXPECT_EQ(FileSize(), kHeaderBytes + strings_bytes + 100 * kPinRecordBytes);
  std::printf("compaction at open: %llu -> %llu bytes\n", static_cast<unsigned long long>(before),
              static_cast<unsigned long long>(FileSize()));

  // The writer compacts too, once the log has grown past twice the live set.
  for (int i = 100; i < 200; ++i) {
    pins->Pin(Id(i), Owner("east/gpt", "t", kStart + 100));
  }
  ASSERT_TRUE(pins->Flush().ok());
  for (int i = 0; i < 200; ++i) {
    pins->Unpin(Id(i));
  }
  pins->Pin("resp_last", Owner("east/gpt", "t", kStart + 100));
  ASSERT_TRUE(pins->Flush().ok());
  EXPECT_EQ(pins->stats().compactions, 2u);
  EXPECT_EQ(FileSize(), kHeaderBytes + strings_bytes + kPinRecordBytes);
  pins.reset();

  pins = OpenPins(options);
  EXPECT_EQ(pins->size(), 1u);
  EXPECT_TRUE(pins->Find("resp_last").has_value());
  EXPECT_FALSE(pins->Find(Id(0)).has_value());
}

TEST_F(ObjectPinsTest, AWriterThatFallsBehindRewritesTheLog) {
  ObjectPinsOptions options = Options();
  options.flush_interval = absl::Hours(1);
  options.max_pending_bytes = 5 * kPinRecordBytes;
  std::unique_ptr<ObjectPins> pins = OpenPins(options);
  for (int i = 0; i < 20; ++i) {
    pins->Pin(Id(i), Owner("east/gpt", "t", kStart + 100));
  }
  EXPECT_EQ(pins->size(), 20u);  // memory is always updated
  EXPECT_EQ(pins->stats().dropped_writes, 15u);
  EXPECT_LE(pins->stats().pending_bytes, options.max_pending_bytes);

  ASSERT_TRUE(pins->Flush().ok());
  EXPECT_EQ(pins->stats().compactions, 1u);
  EXPECT_EQ(pins->stats().pending_bytes, 0u);
  EXPECT_EQ(OpenCrashCopy()->size(), 20u);
}

TEST_F(ObjectPinsTest, EvictionDropsExpiredPinsFirst) {
  ObjectPinsOptions options = Options("");
  options.max_pins = 6400;  // 100 per shard
  std::unique_ptr<ObjectPins> pins = OpenPins(options);
  for (int i = 0; i < 6400; ++i) {
    pins->Pin(Id(i), Owner("b/d", "t", i % 2 == 0 ? kStart + 10 : kStart + 100'000));
  }
  now_ = kStart + 20;  // the even ones have expired
  for (int i = 6400; i < 9400; ++i) {
    pins->Pin(Id(i), Owner("b/d", "t", kStart + 50));
  }
  EXPECT_LE(pins->size(), 6400u);
  EXPECT_GT(pins->stats().evicted, 0u);
  for (int i = 1; i < 6400; i += 2) {
    ASSERT_TRUE(pins->Find(Id(i)).has_value()) << i;
  }
}

TEST_F(ObjectPinsTest, EvictionThenDropsTheSoonestExpiring) {
  ObjectPinsOptions options = Options();
  options.max_pins = 6400;
  auto check = [](ObjectPins& pins) {
    EXPECT_LE(pins.size(), 6400u);
    // Each shard keeps its latest-expiring ~87 to 100 of ~200: the first 3,000 pinned all
    // went, the last 3,000 all stayed.
    for (int i = 0; i < 3000; ++i) {
      ASSERT_FALSE(pins.Find(Id(i)).has_value()) << i;
    }
    for (int i = 12800 - 3000; i < 12800; ++i) {
      ASSERT_TRUE(pins.Find(Id(i)).has_value()) << i;
    }
  };
  {
    std::unique_ptr<ObjectPins> pins = OpenPins(options);
    for (int i = 0; i < 12800; ++i) {
      pins->Pin(Id(i), Owner("b/d", "t", kStart + 1000 + i));
    }
    EXPECT_GE(pins->stats().evicted, 6400u);
    check(*pins);
  }
  // Evictions are not logged: replaying the log applies the same bound.
  std::unique_ptr<ObjectPins> pins = OpenPins(options);
  check(*pins);
}

TEST_F(ObjectPinsTest, ConcurrentPinsAndFindsLoseNothing) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25'000;
  constexpr int kIds = kThreads * kPerThread;
  auto kept = [](int i) { return i % 3 == 0; };  // the others are unpinned again
  ObjectPinsOptions options = Options();
  // The writer appends and, as unpins pile up, compacts while the threads run.
  options.flush_interval = absl::Milliseconds(1);
  options.compact_min_bytes = 0;
  std::unique_ptr<ObjectPins> pins = OpenPins(options);
  std::atomic<int> misses{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t * kPerThread; i < (t + 1) * kPerThread; ++i) {
        pins->Pin(Id(i), Owner(absl::StrCat("backend-", i % 7, "/gpt"), "t", kStart + 100));
        if (!pins->Find(Id(i)).has_value()) {
          ++misses;
        }
        pins->Find(Id((i * 7919) % kIds));  // other threads' shards; maybe not pinned yet
        if (!kept(i)) {
          pins->Unpin(Id(i));
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(misses.load(), 0);
  EXPECT_EQ(pins->size(), static_cast<std::size_t>((kIds + 2) / 3));
  ASSERT_TRUE(pins->Close().ok());
  EXPECT_GE(pins->stats().compactions, 1u);
  std::printf("compactions while 4 threads pinned: %llu\n",
              static_cast<unsigned long long>(pins->stats().compactions));
  EXPECT_EQ(pins->stats().write_errors, 0u);

  pins = OpenPins(options);
  ASSERT_EQ(pins->size(), static_cast<std::size_t>((kIds + 2) / 3));
  for (int i = 0; i < kIds; ++i) {
    std::optional<PinOwner> owner = pins->Find(Id(i));
    ASSERT_EQ(owner.has_value(), kept(i)) << i;
    if (owner.has_value()) {
      ASSERT_EQ(owner->backend_id, absl::StrCat("backend-", i % 7, "/gpt"));
    }
  }
}

constexpr int kMillion = 1'000'000;

void PinMillion(ObjectPins& pins) {
  for (int i = 0; i < kMillion; ++i) {
    // 100 backends, 20 tenants: realistic interning; expiries spread over 30 days.
    pins.Pin(Id(i), Owner(absl::StrCat("aoai-", i % 100, "/gpt-4o"), absl::StrCat("team-", i % 20),
                          kStart + 3600 + i % (30 * 86400)));
  }
}

TEST_F(ObjectPinsTest, AMillionPinsFitIn150MB) {
  const std::size_t resident_before = ResidentBytes();
  std::unique_ptr<ObjectPins> pins = OpenPins(Options(""));
  const auto started = std::chrono::steady_clock::now();
  PinMillion(*pins);
  const auto pinned = std::chrono::steady_clock::now();
  const std::size_t resident_after = ResidentBytes();
  int found = 0;
  for (int i = 0; i < kMillion; ++i) {
    found += pins->Find(Id(i)).has_value() ? 1 : 0;
  }
  const auto looked_up = std::chrono::steady_clock::now();
  EXPECT_EQ(found, kMillion);
  std::printf("1M pins: %.0f ns per Pin, %.0f ns per Find (one thread, ids formatted)\n",
              std::chrono::duration<double, std::nano>(pinned - started).count() / kMillion,
              std::chrono::duration<double, std::nano>(looked_up - pinned).count() / kMillion);
  ASSERT_EQ(pins->size(), static_cast<std::size_t>(kMillion));
  const std::size_t bytes = pins->MemoryBytes();
  std::printf("1M pins: MemoryBytes %.1f MB (%.1f bytes/pin); RSS growth %.1f MB\n", bytes / 1e6,
              static_cast<double>(bytes) / kMillion,
              (static_cast<double>(resident_after) - static_cast<double>(resident_before)) / 1e6);
  EXPECT_LE(bytes, 150'000'000u);
  EXPECT_EQ(pins->Find(Id(123'456))->backend_id, "aoai-56/gpt-4o");
}

TEST_F(ObjectPinsTest, AMillionPinsLoadFromDisk) {
  std::unique_ptr<ObjectPins> pins = OpenPins(Options());
  PinMillion(*pins);
  ASSERT_TRUE(pins->Close().ok());
  pins.reset();

  const auto started = std::chrono::steady_clock::now();
  pins = OpenPins(Options());
  const auto elapsed = std::chrono::steady_clock::now() - started;
  std::printf("1M pins: log %.1f MB, loaded in %lld ms\n", FileSize() / 1e6,
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()));
  ASSERT_EQ(pins->size(), static_cast<std::size_t>(kMillion));
  EXPECT_EQ(pins->Find(Id(999'999))->tenant, "team-19");
  EXPECT_EQ(pins->Find(Id(0))->backend_id, "aoai-0/gpt-4o");
}

namespace pins_internal = object_pins_internal;

TEST(PinLogRecordTest, RecordsDecodeToWhatWasEncoded) {
  const std::optional<pins_internal::PinKey> key = pins_internal::PinKeyOf("resp_a");
  ASSERT_TRUE(key.has_value());
  const pins_internal::PinSlot slot{3, 7, kStart + 60};

  const auto pin = pins_internal::EncodePinRecord(*key, slot);
  ASSERT_EQ(pin.size(), kPinRecordBytes);
  EXPECT_EQ(pins_internal::RecordBytes(pin.data()), pin.size());
  EXPECT_TRUE(pins_internal::RecordIntact(absl::string_view(pin.data(), pin.size())));
  std::optional<pins_internal::PinLogRecord> decoded =
      pins_internal::DecodeRecord(absl::string_view(pin.data(), pin.size()));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->type, pins_internal::PinLogRecord::Type::kPin);
  EXPECT_EQ(decoded->key, *key);
  EXPECT_EQ(decoded->slot.backend, 3u);
  EXPECT_EQ(decoded->slot.tenant, 7u);
  EXPECT_EQ(decoded->slot.expires_unix_s, kStart + 60);

  const auto unpin = pins_internal::EncodeUnpinRecord(*key);
  decoded = pins_internal::DecodeRecord(absl::string_view(unpin.data(), unpin.size()));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->type, pins_internal::PinLogRecord::Type::kUnpin);
  EXPECT_EQ(decoded->key, *key);
}

TEST(PinLogRecordTest, StringRecordsDefineEachNewStringOnce) {
  pins_internal::PinStrings strings;
  strings.Intern("east/gpt");
  strings.Intern("");
  pins_internal::LoggedStrings logged;
  std::string out;
  logged.AppendNew(strings, &out);
  EXPECT_EQ(logged.count, 2u);
  EXPECT_EQ(logged.record_bytes, out.size());

  absl::string_view rest = out;
  for (uint32_t index = 0; index < 2; ++index) {
    const absl::string_view record = rest.substr(0, pins_internal::RecordBytes(rest.data()));
    EXPECT_TRUE(pins_internal::RecordIntact(record));
    const std::optional<pins_internal::PinLogRecord> decoded = pins_internal::DecodeRecord(record);
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->type, pins_internal::PinLogRecord::Type::kString);
    EXPECT_EQ(decoded->string_index, index);
    EXPECT_EQ(decoded->text, strings.Get(index));
    rest.remove_prefix(record.size());
  }
  EXPECT_TRUE(rest.empty());

  logged.AppendNew(strings, &out);  // nothing new: nothing appended
  EXPECT_EQ(logged.record_bytes, out.size());
}

TEST(PinLogRecordTest, DamageAndUnknownRecordsAreRefused) {
  const std::optional<pins_internal::PinKey> key = pins_internal::PinKeyOf("resp_a");
  ASSERT_TRUE(key.has_value());
  auto pin = pins_internal::EncodePinRecord(*key, pins_internal::PinSlot{0, 0, kStart});
  // One byte short of a pin record is not a pin record.
  EXPECT_FALSE(pins_internal::DecodeRecord(absl::string_view(pin.data(), pin.size() - 1)));
  pin[pin.size() - 1] ^= 1;
  EXPECT_FALSE(pins_internal::RecordIntact(absl::string_view(pin.data(), pin.size())));
  pin[pins_internal::kRecordHeaderBytes] = 9;  // no such type
  EXPECT_FALSE(pins_internal::DecodeRecord(absl::string_view(pin.data(), pin.size())));
}

}  // namespace
}  // namespace spillway
