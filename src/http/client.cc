#include "http/client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "net/tls_conn.h"

namespace writ::http {
namespace {

using net::Failure;
using net::WithFailure;

struct CurlUrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Target {
  bool tls = false;
  std::string host;  // without brackets
  std::string port;
  bool loopback = false;
  bool is_ip = false;
};

std::string CurlPart(CURLU* u, CURLUPart part) {
  char* v = nullptr;
  if (curl_url_get(u, part, &v, 0) != CURLUE_OK || v == nullptr) return "";
  std::string out(v);
  curl_free(v);
  return out;
}

absl::StatusOr<Target> ParseTarget(const std::string& url) {
  std::unique_ptr<CURLU, CurlUrlDeleter> u(curl_url());
  if (!u) return absl::ResourceExhaustedError("curl_url: out of memory");
  if (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("url '", url, "': only http:// and https:// are supported"));
  }
  if (CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0); rc != CURLUE_OK) {
    return absl::InvalidArgumentError(absl::StrCat("url '", url, "': ", curl_url_strerror(rc)));
  }
  if (!CurlPart(u.get(), CURLUPART_USER).empty() ||
      !CurlPart(u.get(), CURLUPART_PASSWORD).empty()) {
    return absl::InvalidArgumentError(
        "url: userinfo is not supported (it would leak credentials in logs)");
  }
  Target t;
  t.tls = CurlPart(u.get(), CURLUPART_SCHEME) == "https";
  t.host = CurlPart(u.get(), CURLUPART_HOST);
  if (t.host.size() > 2 && t.host.front() == '[' && t.host.back() == ']')
    t.host = t.host.substr(1, t.host.size() - 2);
  if (t.host.empty())
    return absl::InvalidArgumentError(absl::StrCat("url '", url, "': empty host"));
  t.port = CurlPart(u.get(), CURLUPART_PORT);
  if (t.port.empty()) t.port = t.tls ? "443" : "80";
  in_addr a4;
  in6_addr a6;
  if (inet_pton(AF_INET, t.host.c_str(), &a4) == 1) {
    t.is_ip = true;
    t.loopback = (ntohl(a4.s_addr) >> 24) == 127;
  } else if (inet_pton(AF_INET6, t.host.c_str(), &a6) == 1) {
    t.is_ip = true;
    t.loopback = IN6_IS_ADDR_LOOPBACK(&a6);
  } else {
    t.loopback = absl::EqualsIgnoreCase(t.host, "localhost");
  }
  return t;
}

bool HasCtl(std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return true;
  }
  return false;
}

struct Exchange {
  ClientResponse resp;
  size_t max = 0;
  bool too_large = false;
  const Target* target = nullptr;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* x = static_cast<Exchange*>(user);
  const size_t len = size * n;
  if (x->resp.body.size() + len > x->max) {
    x->too_large = true;
    return 0;  // aborts the transfer: CURLE_WRITE_ERROR
  }
  x->resp.body.append(data, len);
  return len;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* x = static_cast<Exchange*>(user);
  const size_t len = size * n;
  absl::string_view line(data, len);
  if (absl::StartsWith(line, "HTTP/")) {
    x->resp.headers.clear();  // a new response (after 100 Continue): its headers only
    return len;
  }
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return len;
  std::string name = absl::AsciiStrToLower(absl::string_view(data, colon));
  std::string value(
      absl::StripAsciiWhitespace(absl::string_view(data + colon + 1, len - colon - 1)));
  x->resp.headers.emplace_back(std::move(name), std::move(value));
  return len;
}

// The same name check as net::Conn, done by OpenSSL during the handshake, so a mismatch reads
// "certificate verify failed: IP address mismatch" / "hostname mismatch" like the sinks' syslog
// connections (libcurl checks the name again itself after the handshake).
CURLcode OnSslCtx(CURL*, void* ssl_ctx, void* user) {
  const auto* t = static_cast<const Target*>(user);
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(static_cast<SSL_CTX*>(ssl_ctx));
  const int ok = t->is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, t->host.c_str())
                          : X509_VERIFY_PARAM_set1_host(param, t->host.c_str(), 0);
  return ok == 1 ? CURLE_OK : CURLE_SSL_CERTPROBLEM;
}

absl::Status Failed(CURL* c, CURLcode rc, const char* errbuf, const ClientRequest& req,
                    const Target& t, const Exchange& x) {
  const std::string detail =
      errbuf[0] != '\0' ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
  const std::string hostport = absl::StrCat(t.host, ":", t.port);
  long os_errno = 0;
  curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
  curl_off_t connected_us = 0;
  curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connected_us);
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return WithFailure(absl::UnavailableError(absl::StrCat("resolve ", t.host, ": ", detail)),
                         Failure::kResolve);
    case CURLE_COULDNT_CONNECT:
      return WithFailure(
          absl::UnavailableError(absl::StrCat(
              hostport, ": connect: ", os_errno ? strerror(static_cast<int>(os_errno)) : detail)),
          Failure::kConnect);
    case CURLE_OPERATION_TIMEDOUT:
      if (connected_us == 0) {
        return WithFailure(absl::UnavailableError(absl::StrCat(hostport, ": connect: timed out")),
                           Failure::kConnect);
      }
      return WithFailure(absl::DeadlineExceededError(
                             absl::StrCat("no complete response from ", req.url,
                                          ": timed out after ", absl::FormatDuration(req.timeout))),
                         Failure::kTimeout);
    case CURLE_PEER_FAILED_VERIFICATION: {
      long vr = X509_V_OK;
      curl_easy_getinfo(c, CURLINFO_SSL_VERIFYRESULT, &vr);
      const std::string why = vr != X509_V_OK ? X509_verify_cert_error_string(vr) : detail;
      return WithFailure(absl::UnavailableError(absl::StrCat("TLS handshake with ", t.host,
                                                             ": certificate verify failed: ", why)),
                         Failure::kTlsVerify);
    }
    case CURLE_SSL_CACERT_BADFILE:
      return WithFailure(
          absl::FailedPreconditionError(absl::StrCat(
              "load CA file ", req.ca_file.empty() ? "(system store)" : req.ca_file, ": ", detail)),
          Failure::kTls);
    case CURLE_SSL_CERTPROBLEM:
      return WithFailure(absl::FailedPreconditionError(absl::StrCat(
                             "load client cert ", req.cert, " / key ", req.key, ": ", detail)),
                         Failure::kTls);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
      return WithFailure(
          absl::UnavailableError(absl::StrCat("TLS handshake with ", t.host, ": ", detail)),
          Failure::kTls);
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
      if (x.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        return absl::ResourceExhaustedError(
            absl::StrCat("response from ", req.url, " exceeds ", req.max_response_bytes, " bytes"));
      }
      break;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return WithFailure(
          absl::DataLossError(absl::StrCat("malformed response from ", req.url, ": ", detail)),
          Failure::kIo);
    case CURLE_OUT_OF_MEMORY:
      return absl::ResourceExhaustedError(absl::StrCat(req.url, ": out of memory"));
    default:
      break;
  }
  // Send/receive errors, a connection closed before the response, HTTP/2 stream errors.
  return WithFailure(absl::UnavailableError(absl::StrCat(req.method, " ", req.url, ": ", detail)),
                     Failure::kIo);
}

}  // namespace

struct Client::Handle {
  CURL* curl = nullptr;
  ~Handle() {
    if (curl != nullptr) curl_easy_cleanup(curl);
  }
};

Client::Client() : h_(std::make_unique<Handle>()) { GlobalInit(); }
Client::~Client() = default;

absl::StatusOr<ClientResponse> Client::Fetch(const ClientRequest& req) {
  absl::StatusOr<Target> t = ParseTarget(req.url);
  if (!t.ok()) return t.status();
  if (req.method.empty() || HasCtl(req.method) || req.method.find(' ') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("bad method '", req.method, "'"));
  }
  if (req.cert.empty() != req.key.empty()) {
    return absl::InvalidArgumentError("client certificate and key go together");
  }
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add = [&headers](const std::string& line) {
    curl_slist* l = curl_slist_append(headers.get(), line.c_str());
    if (l != nullptr) {
      (void)headers.release();
      headers.reset(l);
    }
    return l != nullptr;
  };
  bool content_type = false;
  for (const auto& [k, v] : req.headers) {
    if (k.empty() || HasCtl(k) || HasCtl(v) || k.find(':') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("header '", k, "': bad name or value (CR, LF, NUL or ':')"));
    }
    if (absl::EqualsIgnoreCase(k, "content-type")) content_type = true;
    if (!add(absl::StrCat(k, ": ", v)))
      return absl::ResourceExhaustedError("curl_slist_append: out of memory");
  }
  // No "Expect: 100-continue" round trip; no Content-Type the caller did not ask for.
  add("Expect:");
  if (!content_type) add("Content-Type:");

  if (h_->curl == nullptr) {
    h_->curl = curl_easy_init();
    if (h_->curl == nullptr) return absl::ResourceExhaustedError("curl_easy_init failed");
  } else {
    curl_easy_reset(h_->curl);  // options only: live connections and caches stay
  }
  CURL* c = h_->curl;
  Exchange x;
  x.max = req.max_response_bytes;
  x.target = &*t;
  char errbuf[CURL_ERROR_SIZE] = {0};
  const long timeout_ms =
      std::max<long>(1, static_cast<long>(absl::ToInt64Milliseconds(req.timeout)));
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "writd");
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(req.max_response_bytes));
  if (t->loopback) curl_easy_setopt(c, CURLOPT_PROXY, "");  // never through a proxy
  // TLS: always verified (peer and name), TLS 1.2 or later.
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(c, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  curl_easy_setopt(c, CURLOPT_CA_CACHE_TIMEOUT, 60L);  // a replaced CA file counts within a minute
  if (!req.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, req.ca_file.c_str());
  if (!req.cert.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERT, req.cert.c_str());
    curl_easy_setopt(c, CURLOPT_SSLKEY, req.key.c_str());
  }
  if (t->tls) {
    curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, OnSslCtx);
    curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, static_cast<void*>(const_cast<Target*>(&*t)));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
  if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (req.method == "GET" && req.body.empty()) {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    if (req.method != "POST") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  const CURLcode rc = curl_easy_perform(c);
  // Nothing of this request may outlive it in the handle (the header list, the target).
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, nullptr);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  if (rc != CURLE_OK) return Failed(c, rc, errbuf, req, *t, x);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  long version = 0;
  curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &version);
  x.resp.status = static_cast<int>(status);
  x.resp.http_version = version == CURL_HTTP_VERSION_2_0   ? 20
                        : version == CURL_HTTP_VERSION_1_0 ? 10
                                                           : 11;
  return std::move(x.resp);
}

absl::StatusOr<ClientResponse> Fetch(const ClientRequest& req) {
  Client c;
  return c.Fetch(req);
}

}  // namespace writ::http
