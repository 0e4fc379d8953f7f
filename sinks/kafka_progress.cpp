// The Kafka sink's progress record: its JSON, its compacted topic, and reading it back (read_committed).
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_map>

#include "sinks/kafka_internal.h"
#include "sinks/kafka_sink.h"

namespace cdcsync {
namespace kafka {

void set_conf(rd_kafka_conf_t* conf, const std::string& name, const std::string& value, bool secret) {
  char err[512] = {};
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    throw std::invalid_argument(
        fmt::format("kafka.properties.{}: {}", name, secret ? std::string("refused by librdkafka") : err));
  }
}

void sanitize_topic(std::string& topic) {
  for (char& c : topic) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) c = '_';
  }
}

std::string progress_json(const std::string& pipeline, const std::string& transactional_id,
                          const Progress& p) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("pipeline");
  w.String(pipeline);
  w.Key("end_lsn");
  w.String(p.end_lsn.str());
  w.Key("xid");
  w.Uint(p.xid.value);
  w.Key("commit_time_us");
  w.Int64(p.commit_time_us);
  w.Key("acked_lsn");
  w.String(p.acked_lsn.str());
  w.Key("transactional_id");
  w.String(transactional_id);
  w.EndObject();
  return buf.GetString();
}

std::optional<Progress> parse_progress(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
  auto lsn = [&](const char* name) -> std::optional<Lsn> {
    auto it = doc.FindMember(name);
    if (it == doc.MemberEnd() || !it->value.IsString()) return std::nullopt;
    return Lsn::parse(it->value.GetString());
  };
  const auto end = lsn("end_lsn");
  const auto acked = lsn("acked_lsn");
  if (!end || !acked) return std::nullopt;
  Progress p;
  p.end_lsn = *end;
  p.acked_lsn = *acked;
  if (auto it = doc.FindMember("xid"); it != doc.MemberEnd() && it->value.IsUint())
    p.xid = Xid{it->value.GetUint()};
  if (auto it = doc.FindMember("commit_time_us"); it != doc.MemberEnd() && it->value.IsInt64()) {
    p.commit_time_us = it->value.GetInt64();
  }
  return p;
}

void ensure_progress_topic(rd_kafka_t* rk, const std::string& topic, std::chrono::milliseconds timeout) {
  char err[512] = {};
  bool exists = false;
  {
    // All topics, not this one: a metadata request for one topic may auto-create it with the default policy.
    const rd_kafka_metadata_t* raw = nullptr;
    if (rd_kafka_metadata(rk, 1, nullptr, &raw, static_cast<int>(timeout.count())) ==
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      RdMetadata md{raw};
      for (int i = 0; i < md->topic_cnt; ++i) exists = exists || topic == md->topics[i].topic;
    }
  }
  if (!exists) {
    RdNewTopic nt{rd_kafka_NewTopic_new(topic.c_str(), 1, -1, err, sizeof err)};
    if (nt) {
      rd_kafka_NewTopic_set_config(nt.get(), "cleanup.policy", "compact");
      RdQueue q{rd_kafka_queue_new(rk)};
      rd_kafka_NewTopic_t* topics[] = {nt.get()};
      rd_kafka_CreateTopics(rk, topics, 1, nullptr, q.get());
      RdEvent ev{rd_kafka_queue_poll(
          q.get(), static_cast<int>(std::min(timeout, std::chrono::milliseconds(10000)).count()))};
      rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR__TIMED_OUT;
      if (ev) {
        code = rd_kafka_event_error(ev.get());
        if (const auto* res = rd_kafka_event_CreateTopics_result(ev.get()); res != nullptr && code == 0) {
          size_t n = 0;
          const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &n);
          if (n == 1) code = rd_kafka_topic_result_error(results[0]);
        }
      }
      if (code != RD_KAFKA_RESP_ERR_NO_ERROR && code != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        spdlog::warn(
            "kafka: could not create the progress topic {} ({}); create it with cleanup.policy=compact",
            topic, rd_kafka_err2name(code));
      }
    }
  }
}

}  // namespace kafka

namespace {

using namespace kafka;
using Clock = std::chrono::steady_clock;

// Properties that also matter to the progress reader (a consumer): connection and security.
bool applies_to_consumer(std::string_view name) {
  for (std::string_view prefix : {"security.", "sasl.", "ssl.", "socket.", "broker.", "client.",
                                  "api.version", "reconnect.", "topic.metadata.", "metadata."}) {
    if (name.starts_with(prefix)) return true;
  }
  return false;
}

}  // namespace

std::string kafka_progress_topic(std::string_view topic_prefix) {
  std::string t = fmt::format("{}.cdcsync.progress", topic_prefix);
  sanitize_topic(t);
  return t;
}

std::optional<Progress> KafkaSink::read_progress() {
  RdConf conf{rd_kafka_conf_new()};
  for (const auto& [name, value] : options_.properties) {
    if (applies_to_consumer(name))
      set_conf(conf.get(), name, value, name.find("password") != std::string::npos);
  }
  set_conf(conf.get(), "bootstrap.servers", options_.brokers);
  set_conf(conf.get(), "isolation.level", "read_committed");
  set_conf(conf.get(), "enable.partition.eof", "true");
  set_conf(conf.get(), "enable.auto.commit", "false");
  set_conf(conf.get(), "auto.offset.reset", "earliest");
  set_conf(conf.get(), "group.id", "cdcsync-progress-" + options_.pipeline);  // never joined: assign() only
  char err[512] = {};
  RdKafka rk{rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), err, sizeof err)};
  if (!rk) throw std::invalid_argument(fmt::format("kafka: cannot create the progress reader: {}", err));
  conf.release();
  const auto fail = [&](const std::string& what) -> std::optional<Progress> {
    throw KafkaUnavailable(fmt::format("kafka: reading progress topic {}: {}", progress_topic_, what));
  };

  RdTopic topic{rd_kafka_topic_new(rk.get(), progress_topic_.c_str(), nullptr)};
  const rd_kafka_metadata_t* raw = nullptr;
  const int timeout = static_cast<int>(options_.timeout.count());
  if (auto e = rd_kafka_metadata(rk.get(), 0, topic.get(), &raw, timeout); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return fail(rd_kafka_err2str(e));
  }
  RdMetadata md{raw};
  if (md->topic_cnt != 1 || md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) return std::nullopt;
  if (md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) return fail(rd_kafka_err2str(md->topics[0].err));

  RdPartitions assignment{rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt)};
  std::unordered_map<std::int32_t, std::int64_t> end;  // partition -> high watermark to reach
  for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
    const std::int32_t p = md->topics[0].partitions[i].id;
    std::int64_t lo = 0;
    std::int64_t hi = 0;
    if (auto e = rd_kafka_query_watermark_offsets(rk.get(), progress_topic_.c_str(), p, &lo, &hi, timeout);
        e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return fail(fmt::format("watermarks of partition {}: {}", p, rd_kafka_err2str(e)));
    }
    if (hi <= lo) continue;
    end[p] = hi;
    rd_kafka_topic_partition_list_add(assignment.get(), progress_topic_.c_str(), p)->offset = lo;
  }
  if (end.empty()) return std::nullopt;
  if (auto e = rd_kafka_assign(rk.get(), assignment.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return fail(rd_kafka_err2str(e));
  }

  // Read up to the high watermark seen now. With read_committed the consumer stops at the last stable
  // offset, which another pipeline's open transaction on the same partition may hold back for a moment.
  std::optional<Progress> found;
  bool tombstoned = false;
  const auto deadline = Clock::now() + options_.timeout;
  while (!end.empty()) {
    if (Clock::now() >= deadline) {
      rd_kafka_consumer_close(rk.get());
      return fail(
          "did not reach the end of the topic in time (an open transaction holding the last stable offset?)");
    }
    RdMessage m{rd_kafka_consumer_poll(rk.get(), 100)};
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (auto it = end.find(m->partition); it != end.end() && m->offset >= it->second) end.erase(it);
      continue;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_consumer_close(rk.get());
      return fail(rd_kafka_message_errstr(m.get()));
    }
    if (auto it = end.find(m->partition); it != end.end() && m->offset + 1 >= it->second) end.erase(it);
    const std::string_view key{static_cast<const char*>(m->key), m->key_len};
    if (key != options_.pipeline) continue;
    if (m->payload == nullptr) {
      tombstoned = true;  // an operator deleted the pipeline's progress
      found.reset();
      continue;
    }
    auto p = parse_progress({static_cast<const char*>(m->payload), m->len});
    if (!p) {
      rd_kafka_consumer_close(rk.get());
      return fail(fmt::format("the record at partition {} offset {} is not a progress record", m->partition,
                              m->offset));
    }
    if (!found || p->end_lsn >= found->end_lsn) {
      const Lsn acked = found ? std::max(found->acked_lsn, p->acked_lsn) : p->acked_lsn;
      found = *p;
      found->acked_lsn = acked;
    }
    tombstoned = false;
  }
  rd_kafka_consumer_close(rk.get());
  if (tombstoned)
    spdlog::warn("kafka: the progress of pipeline {} was deleted from {}", options_.pipeline,
                 progress_topic_);
  return found;
}

}  // namespace cdcsync
