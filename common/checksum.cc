#include "common/checksum.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <vector>

namespace hsmfs {
namespace {

std::string Hex(const unsigned char* data, size_t len) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out(len * 2, '0');
  for (size_t i = 0; i < len; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0xf];
  }
  return out;
}

class EvpHasher final : public Hasher {
 public:
  EvpHasher(const EVP_MD* md, std::string_view name) : ctx_(EVP_MD_CTX_new()), name_(name) {
    EVP_DigestInit_ex(ctx_, md, nullptr);
  }
  ~EvpHasher() override { EVP_MD_CTX_free(ctx_); }
  EvpHasher(const EvpHasher&) = delete;
  EvpHasher& operator=(const EvpHasher&) = delete;

  void Update(const void* data, size_t len) override { EVP_DigestUpdate(ctx_, data, len); }
  std::string Finish() override {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, digest, &len);
    return std::string(name_) + ":" + Hex(digest, len);
  }

 private:
  EVP_MD_CTX* ctx_;
  std::string_view name_;
};

class Xxh3Hasher final : public Hasher {
 public:
  Xxh3Hasher() : state_(XXH3_createState()) { XXH3_64bits_reset(state_); }
  ~Xxh3Hasher() override { XXH3_freeState(state_); }
  Xxh3Hasher(const Xxh3Hasher&) = delete;
  Xxh3Hasher& operator=(const Xxh3Hasher&) = delete;

  void Update(const void* data, size_t len) override { XXH3_64bits_update(state_, data, len); }
  std::string Finish() override {
    XXH64_canonical_t canonical;
    XXH64_canonicalFromHash(&canonical, XXH3_64bits_digest(state_));
    return "xxh3:" + Hex(canonical.digest, sizeof canonical.digest);
  }

 private:
  XXH3_state_t* state_;
};

}  // namespace

std::string_view ChecksumAlgoName(ChecksumAlgo algo) {
  switch (algo) {
    case ChecksumAlgo::kMd5:
      return "md5";
    case ChecksumAlgo::kSha256:
      return "sha256";
    case ChecksumAlgo::kXxh3:
      return "xxh3";
  }
  return "md5";
}

Result<ChecksumAlgo> ParseChecksumAlgo(std::string_view name) {
  if (name == "md5") return ChecksumAlgo::kMd5;
  if (name == "sha256") return ChecksumAlgo::kSha256;
  if (name == "xxh3") return ChecksumAlgo::kXxh3;
  return InvalidArgumentError("unknown checksum algorithm \"" + std::string(name) +
                              "\" (use md5, sha256 or xxh3)");
}

std::unique_ptr<Hasher> Hasher::Create(ChecksumAlgo algo) {
  switch (algo) {
    case ChecksumAlgo::kMd5:
      return std::make_unique<EvpHasher>(EVP_md5(), "md5");
    case ChecksumAlgo::kSha256:
      return std::make_unique<EvpHasher>(EVP_sha256(), "sha256");
    case ChecksumAlgo::kXxh3:
      return std::make_unique<Xxh3Hasher>();
  }
  return nullptr;
}

Result<std::string> ChecksumFile(const std::filesystem::path& path, ChecksumAlgo algo,
                                 const CancelToken& cancel) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "open " + path.string());
  auto hasher = Hasher::Create(algo);
  std::vector<char> buf(1 << 20);
  for (;;) {
    if (cancel.cancelled()) {
      ::close(fd);
      return CancelledError("checksum of " + path.string() + " cancelled");
    }
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return ErrnoToStatus(err, "read " + path.string());
    }
    if (n == 0) break;
    hasher->Update(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return hasher->Finish();
}

Result<ChecksumAlgo> AlgoOfChecksum(std::string_view checksum) {
  const size_t colon = checksum.find(':');
  if (colon == std::string_view::npos) {
    return InvalidArgumentError("checksum \"" + std::string(checksum) + "\" has no algo: prefix");
  }
  return ParseChecksumAlgo(checksum.substr(0, colon));
}

}  // namespace hsmfs
