// A Sink fake for unit tests of the pipeline: records what it is given, keeps a simulated progress row
// with the real sink's rules (skip transactions at or below progress, chunks stay open until the last one,
// acked_lsn never moves backwards) and can be told to throw.
#pragma once

#include <algorithm>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "sinks/sink.h"

namespace cdcsync {

class RecordingSink final : public Sink {
 public:
  struct Applied {
    Xid xid;
    Lsn end_lsn;
    std::size_t changes = 0;
  };

  // Throw `error` from the next apply (once). Example: fail_next_apply(TransientError("lost connection")).
  template <typename E>
  void fail_next_apply(E error) {
    std::lock_guard lock(mu_);
    next_error_ = std::make_exception_ptr(std::move(error));
  }
  // Called before every apply; may throw.
  void on_apply(std::function<void(const Batch&)> hook) {
    std::lock_guard lock(mu_);
    hook_ = std::move(hook);
  }
  void set_progress(std::optional<Progress> p) {
    std::lock_guard lock(mu_);
    progress_ = p;
  }

  std::optional<Lsn> apply(const Batch& batch) override {
    std::unique_lock lock(mu_);
    batches_.push_back(batch);
    if (next_error_) {
      auto e = std::exchange(next_error_, nullptr);
      pending_changes_ = 0;
      std::rethrow_exception(e);
    }
    if (hook_) {
      auto hook = hook_;
      lock.unlock();
      try {
        hook(batch);
      } catch (...) {
        std::lock_guard relock(mu_);
        pending_changes_ = 0;
        throw;
      }
      lock.lock();
    }
    for (const auto& t : batch.transactions) {
      if (t.first_chunk) {
        skipping_ = progress_ && t.info.end_lsn.valid() && t.info.end_lsn <= progress_->end_lsn;
        pending_changes_ = 0;
      }
      if (skipping_) continue;
      pending_changes_ += t.changes.size();
      if (t.last_chunk) {
        applied_.push_back({t.info.xid, t.info.end_lsn, pending_changes_});
        pending_changes_ = 0;
        const Lsn acked = progress_ ? std::max(progress_->acked_lsn, t.info.end_lsn) : t.info.end_lsn;
        progress_ = Progress{t.info.end_lsn, t.info.xid, t.info.commit_time_us, acked};
      }
    }
    if (!batch.ends_whole()) return std::nullopt;
    // Like the real sink: a batch committed without waiting for its flush makes nothing new durable; a
    // durable one makes everything before it durable.
    unflushed_ = !batch.durable;
    if (unflushed_) return std::nullopt;
    return progress_ ? progress_->end_lsn : Lsn{};
  }

  std::optional<Lsn> sync() override {
    std::lock_guard lock(mu_);
    if (!unflushed_) return std::nullopt;
    unflushed_ = false;
    ++syncs_;
    return progress_ ? progress_->end_lsn : Lsn{};
  }

  // Like the real sink's: what was committed without waiting for its flush is found flushed once the target
  // flushed it by itself (flush_in_background).
  std::optional<Lsn> flushed() override {
    std::lock_guard lock(mu_);
    ++flushed_asks_;
    if (!unflushed_ || !background_flush_) return std::nullopt;
    unflushed_ = false;
    return progress_ ? progress_->end_lsn : Lsn{};
  }
  // From now on, flushed() finds every commit flushed (a target whose WAL writer keeps up).
  void flush_in_background(bool on) {
    std::lock_guard lock(mu_);
    background_flush_ = on;
  }
  int flushed_asks() const {
    std::lock_guard lock(mu_);
    return flushed_asks_;
  }

  void abort() override {
    std::lock_guard lock(mu_);
    ++aborts_;
    pending_changes_ = 0;
  }

  std::optional<Progress> load_progress() override {
    std::lock_guard lock(mu_);
    return progress_;
  }

  void record_ack(Lsn lsn) override {
    std::lock_guard lock(mu_);
    acks_.push_back(lsn);
    unflushed_ = false;
    if (progress_)
      progress_->acked_lsn = std::max(progress_->acked_lsn, lsn);
    else
      progress_ = Progress{.acked_lsn = lsn};
  }

  std::vector<Batch> batches() const {
    std::lock_guard lock(mu_);
    return batches_;
  }
  // Source transactions applied (once each, in order), as the target would hold them.
  std::vector<Applied> applied() const {
    std::lock_guard lock(mu_);
    return applied_;
  }
  std::vector<Lsn> acks() const {
    std::lock_guard lock(mu_);
    return acks_;
  }
  int aborts() const {
    std::lock_guard lock(mu_);
    return aborts_;
  }
  int syncs() const {
    std::lock_guard lock(mu_);
    return syncs_;
  }
  // A batch committed without waiting for its flush is not durable yet.
  bool unflushed() const {
    std::lock_guard lock(mu_);
    return unflushed_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Batch> batches_;
  std::vector<Applied> applied_;
  std::vector<Lsn> acks_;
  std::size_t pending_changes_ = 0;
  std::optional<Progress> progress_;
  std::exception_ptr next_error_;
  std::function<void(const Batch&)> hook_;
  bool skipping_ = false;
  bool unflushed_ = false;
  bool background_flush_ = false;
  int flushed_asks_ = 0;
  int aborts_ = 0;
  int syncs_ = 0;
};

}  // namespace cdcsync
