// SPDX-License-Identifier: MIT
// Writing a file so that it is either the complete new content or untouched: the bytes go to a
// temporary file in the same directory, are flushed to the disk (fsync), and the temporary is then
// renamed over the target (atomic on POSIX), and the directory entry is flushed too. A crash or an
// error at any point leaves the old file (or none) and no half-written one. POSIX only.
#pragma once
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metagrad/core/error.hpp"

namespace metagrad::io::detail {

/// An open file descriptor that closes itself.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd = -1) : fd_(fd) {}
  ~FileDescriptor() { close(); }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  /// Takes over `fd`, closing the one held before.
  void reset(int fd) {
    close();
    fd_ = fd;
  }
  int get() const { return fd_; }
  /// Closes now; returns false (with errno set) when close reports a failed write-back.
  bool close() {
    if (fd_ < 0) return true;
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0;
  }

 private:
  int fd_;
};

inline std::string errno_text() { return std::strerror(errno); }

/// Writes all of `bytes` to fd, resuming after partial writes and interruptions.
inline bool write_all(int fd, std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    const ::ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
  return true;
}

/// Reads exactly bytes.size() bytes; false on an error or a premature end of file.
inline bool read_all(int fd, std::span<std::byte> bytes) {
  while (!bytes.empty()) {
    const ::ssize_t n = ::read(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
  return true;
}

/// Replaces `path` atomically by what `fill(write)` writes, where write(std::span<const std::byte>)
/// appends bytes. `op` names the caller in errors.
template <class Fill>
void write_file_atomically(const std::filesystem::path& path, const char* op, Fill&& fill) {
  static std::atomic<std::uint64_t> counter{0};
  const std::filesystem::path dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  std::filesystem::path tmp;
  FileDescriptor fd;
  for (int attempt = 0; fd.get() < 0; ++attempt) {
    tmp = dir / (path.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                 std::to_string(counter.fetch_add(1)));
    // 0666 less the umask, like any newly created file (mkstemp would force 0600).
    fd.reset(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
    if (fd.get() < 0 && (errno != EEXIST || attempt > 100))
      fail(op, "cannot create a temporary file in '", dir.string(), "' to write '", path.string(), "': ", errno_text());
  }
  auto cleanup_and_fail = [&](const char* what) {
    const std::string reason = errno_text();
    fd.close();
    ::unlink(tmp.c_str());
    fail(op, "writing '", path.string(), "' failed (", what, "): ", reason, "; the previous file, if any, is unchanged");
  };
  try {
    bool ok = true;
    fill([&](std::span<const std::byte> bytes) { ok = ok && write_all(fd.get(), bytes); });
    if (!ok) cleanup_and_fail("write");
  } catch (...) {
    fd.close();
    ::unlink(tmp.c_str());
    throw;
  }
  if (::fsync(fd.get()) != 0) cleanup_and_fail("fsync");
  if (!fd.close()) cleanup_and_fail("close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) cleanup_and_fail("rename");
  // Make the rename itself durable; failing to open the directory (odd file systems) is not fatal.
  FileDescriptor dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() >= 0) ::fsync(dir_fd.get());
}

}  // namespace metagrad::io::detail
