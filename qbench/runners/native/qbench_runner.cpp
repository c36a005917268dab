// qbench native runner: loads one ExecuTorch .pte, times load / method init /
// first inference / steady state, and prints one JSON object (see
// qbench/runners/contract.md for the flags and fields).
//
// Errors: exit non-zero, and the LAST stderr line is `qbench-runner: <cause>`.
// ExecuTorch's own error logs are forwarded to stderr before it (prefixed
// `executorch:`), so the caller can still see them while taking the last line.
// A crash inside ExecuTorch (a malformed program can still reach one after
// verification) prints `qbench-runner: crashed: SIGSEGV (...) while <phase>`
// and then dies by the same signal, so the exit status stays truthful.
//
// Platforms: built only for Linux x86_64 (host), Linux aarch64 and Android arm64-v8a
// (native_build.TARGETS). All three are Linux kernels: the runner relies on sched_setaffinity,
// /proc (VmHWM, /proc/stat, schedstat) and sysfs cpufreq, so any other platform is refused here.
#if !defined(__linux__)
#error "qbench_runner is built for Linux and Android only (targets host, linux-aarch64, android-arm64-v8a)"
#endif

#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <executorch/extension/data_loader/file_data_loader.h>
#include <executorch/extension/memory_allocator/malloc_memory_allocator.h>
#include <executorch/runtime/core/exec_aten/util/dim_order_util.h>
#include <executorch/runtime/core/exec_aten/util/scalar_type_util.h>
#include <executorch/runtime/executor/method.h>
#include <executorch/runtime/executor/program.h>
#include <executorch/runtime/platform/platform.h>
#include <executorch/runtime/platform/runtime.h>

#ifdef QBENCH_HAVE_ETDUMP
#include <executorch/devtools/etdump/etdump_flatcc.h>
#endif

#include "json_writer.h"
#include "threadpool_shim.h"

namespace et = executorch::runtime;
using executorch::aten::ScalarType;
using executorch::extension::FileDataLoader;
using executorch::extension::MallocMemoryAllocator;
using Clock = std::chrono::steady_clock;

namespace {

// ---------------------------------------------------------------- errors

struct Failure : std::runtime_error {
  int code;
  Failure(const std::string& msg, int c = 1) : std::runtime_error(msg), code(c) {}
};

[[noreturn]] void fail(const std::string& msg) { throw Failure(msg, 1); }
[[noreturn]] void usage(const std::string& msg) { throw Failure(msg, 2); }

// " (InvalidProgram, 0x23)": appended to our messages so the cause is precise.
std::string et_error(et::Error e) {
  std::string name = et::to_string(e);
  if (name.rfind("Error::", 0) == 0) name = name.substr(7);
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%x", static_cast<unsigned>(e));
  return " (" + name + ", " + buf + ")";
}

// Forward ExecuTorch's error/fatal logs to stderr with a prefix; drop info and
// debug chatter so stderr stays short. Our own line is printed after these.
void et_log(et_timestamp_t, et_pal_log_level_t level, const char* file,
            const char*, size_t line, const char* msg, size_t len) {
  if (level != kError && level != kFatal) return;
  while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r')) len--;
  // ET may quote raw file bytes (e.g. a bad magic); escape them so stderr stays
  // one line per message and valid text for the caller.
  std::string text;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = static_cast<unsigned char>(msg[i]);
    if (c >= 0x20 && c < 0x7f) {
      text += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      text += buf;
    }
  }
  const char* base = std::strrchr(file ? file : "", '/');
  std::fprintf(stderr, "executorch: %c %s:%zu] %s\n", static_cast<char>(level),
               base ? base + 1 : (file ? file : "?"), line, text.c_str());
}

// What the runner is doing, for the crash line. Only ever points at literals.
const char* volatile g_phase = "starting";
const char* volatile g_phase_hint = "";
const char* volatile g_oom_hint = "";  // what an allocation failure in this phase points at

void set_phase(const char* phase, const char* hint, const char* oom_hint = nullptr) {
  g_phase = phase;
  g_phase_hint = hint;
  g_oom_hint = oom_hint ? oom_hint : hint;
}

void write_str(const char* s) {
  size_t n = std::strlen(s);  // strlen and write are async-signal-safe
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

const char* signal_description(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV (segmentation fault)";
    case SIGBUS: return "SIGBUS (bus error)";
    case SIGFPE: return "SIGFPE (arithmetic error)";
    case SIGILL: return "SIGILL (illegal instruction)";
    case SIGABRT: return "SIGABRT (aborted)";
    default: return "a fatal signal";
  }
}

void on_fatal_signal(int sig) {
  write_str("\nqbench-runner: crashed: ");
  write_str(signal_description(sig));
  write_str(" while ");
  write_str(g_phase);
  write_str(g_phase_hint);
  write_str("\n");
  // SA_RESETHAND restored the default action: die by the same signal.
  raise(sig);
}

void install_crash_handlers() {
  // An alternate stack, so a stack overflow still reaches the handler.
  static char alt_stack[64 * 1024];
  stack_t ss{};
  ss.ss_sp = alt_stack;
  ss.ss_size = sizeof(alt_stack);
  sigaltstack(&ss, nullptr);
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sa.sa_flags = SA_RESETHAND | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) sigaction(sig, &sa, nullptr);
}

// ---------------------------------------------------------------- flags

struct Options {
  std::string model;
  std::string method = "forward";
  long warmup = 10;
  double warmup_seconds = 0.5;
  long iterations = 50;
  double min_seconds = 1.0;
  long max_iterations = 100000;
  long threads = 1;  // as the Python runner and the suite default
  std::vector<int> affinity;
  std::string inputs, outputs, etdump;
  bool json = false;
  long input_sets = 1;  // --input-sets N: the inputs file holds N sets; outputs of each are written
  long prompt_tokens = 0, new_tokens = 0, seed = 0;  // generation mode (generate.h)
  std::string score_tokens;  // scoring mode (generate.h): windows of token ids, teacher-forced
  long window = 0;
};

long parse_long(const std::string& flag, const std::string& v, long lo) {
  char* end = nullptr;
  errno = 0;
  long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end || errno || x < lo)
    usage(flag + " expects an integer >= " + std::to_string(lo) + ", got '" + v + "'");
  return x;
}

double parse_seconds(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end || !(x >= 0))
    usage(flag + " expects seconds >= 0, got '" + v + "'");
  return x;
}

// "0,1,2" or ranges like "0-3,6".
std::vector<int> parse_cpus(const std::string& v) {
  std::vector<int> cpus;
  std::stringstream ss(v);
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto dash = item.find('-');
    if (dash == std::string::npos) {
      cpus.push_back(static_cast<int>(parse_long("--affinity", item, 0)));
    } else {
      long a = parse_long("--affinity", item.substr(0, dash), 0);
      long b = parse_long("--affinity", item.substr(dash + 1), a);
      for (long c = a; c <= b; c++) cpus.push_back(static_cast<int>(c));
    }
  }
  if (cpus.empty()) usage("--affinity expects CPU ids like 0,1,2");
  return cpus;
}

[[noreturn]] void print_usage() {
  std::printf(
      "usage: qbench_runner --model PTE [--method NAME] [--warmup N] [--warmup-seconds S]\n"
      "  [--iterations N] [--min-seconds S] [--max-iterations N] [--threads N]\n"
      "  [--affinity 0,1,2] [--inputs FILE] [--outputs FILE] [--etdump FILE] [--json]\n"
      "  [--input-sets N]   (N input sets in --inputs; --outputs gets the outputs of each)\n"
      "  [--prompt-tokens P --new-tokens N [--seed S]]   (generation mode: prefill + greedy decode)\n"
      "  [--score-tokens FILE --window W]   (scoring mode: per-token NLL of windows of W int64 token ids)\n");
  std::exit(0);
}

// One flag that takes a value; `next` yields the value (inline --flag=V or the next argument).
template <class Next>
void apply_flag(Options& o, const std::string& flag, const Next& next) {
  if (flag == "--model") o.model = next();
  else if (flag == "--method") o.method = next();
  else if (flag == "--warmup") o.warmup = parse_long(flag, next(), 0);
  else if (flag == "--warmup-seconds") o.warmup_seconds = parse_seconds(flag, next());
  else if (flag == "--iterations") o.iterations = parse_long(flag, next(), 1);
  else if (flag == "--min-seconds") o.min_seconds = parse_seconds(flag, next());
  else if (flag == "--max-iterations") o.max_iterations = parse_long(flag, next(), 1);
  else if (flag == "--threads") o.threads = parse_long(flag, next(), 1);
  else if (flag == "--affinity") o.affinity = parse_cpus(next());
  else if (flag == "--inputs") o.inputs = next();
  else if (flag == "--outputs") o.outputs = next();
  else if (flag == "--etdump") o.etdump = next();
  else if (flag == "--input-sets") o.input_sets = parse_long(flag, next(), 1);
  else if (flag == "--prompt-tokens") o.prompt_tokens = parse_long(flag, next(), 1);
  else if (flag == "--new-tokens") o.new_tokens = parse_long(flag, next(), 1);
  else if (flag == "--seed") o.seed = parse_long(flag, next(), 0);
  else if (flag == "--score-tokens") o.score_tokens = next();
  else if (flag == "--window") o.window = parse_long(flag, next(), 2);
  else usage("unknown flag '" + flag + "' (see --help)");
}

// Rules between flags.
void check_options(const Options& o) {
  if (o.model.empty()) usage("--model is required");
  if (o.max_iterations < o.iterations) usage("--max-iterations must be >= --iterations");
  if (o.input_sets > 1 && o.inputs.empty()) usage("--input-sets needs --inputs");
  if ((o.prompt_tokens > 0) != (o.new_tokens > 0)) usage("--prompt-tokens and --new-tokens go together (generation mode)");
  if (o.score_tokens.empty() != (o.window == 0)) usage("--score-tokens and --window go together (scoring mode)");
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string flag = argv[i], value;
    bool has_inline = false;
    if (auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_inline = true;
    }
    if (flag == "--json") {
      o.json = true;
      continue;
    }
    if (flag == "--help" || flag == "-h") print_usage();
    apply_flag(o, flag, [&]() -> std::string {
      if (has_inline) return value;
      if (i + 1 >= argc) usage(flag + " needs a value");
      return argv[++i];
    });
  }
  check_options(o);
  return o;
}

// ---------------------------------------------------------------- tensors

// Names as torch spells them (without "torch."), so Python maps them directly.
const char* dtype_name(ScalarType t) {
  switch (t) {
    case ScalarType::Byte: return "uint8";
    case ScalarType::Char: return "int8";
    case ScalarType::Short: return "int16";
    case ScalarType::Int: return "int32";
    case ScalarType::Long: return "int64";
    case ScalarType::Half: return "float16";
    case ScalarType::Float: return "float32";
    case ScalarType::Double: return "float64";
    case ScalarType::Bool: return "bool";
    case ScalarType::BFloat16: return "bfloat16";
    default: return et::toString(t);
  }
}

std::string shape_str(et::Span<const int32_t> sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); i++) s += (i ? "," : "") + std::to_string(sizes[i]);
  return s + "]";
}

// The default input: element i takes v = (i * 7919) % 251, mapped per dtype so
// that every runner (and the Python mirror in native_build.default_fill) makes
// the same bytes without a file.
void deterministic_fill(ScalarType t, void* data, size_t numel) {
  for (size_t i = 0; i < numel; i++) {
    int v = static_cast<int>((i * 7919u) % 251u);
    switch (t) {
      case ScalarType::Float: static_cast<float*>(data)[i] = v / 250.0f - 0.5f; break;
      case ScalarType::Double: static_cast<double*>(data)[i] = v / 250.0 - 0.5; break;
      case ScalarType::Char: static_cast<int8_t*>(data)[i] = static_cast<int8_t>(v - 125); break;
      case ScalarType::Byte: static_cast<uint8_t*>(data)[i] = static_cast<uint8_t>(v); break;
      case ScalarType::Short: static_cast<int16_t*>(data)[i] = static_cast<int16_t>(v); break;
      case ScalarType::Int: static_cast<int32_t*>(data)[i] = v; break;
      case ScalarType::Long: static_cast<int64_t*>(data)[i] = v; break;
      case ScalarType::Bool: static_cast<bool*>(data)[i] = v & 1; break;
      default: fail(std::string("no default fill for input dtype ") + dtype_name(t) +
                    "; pass --inputs");
    }
  }
}

// Owns the bytes and the TensorImpl metadata of one input tensor.
struct InputTensor {
  std::vector<int32_t> sizes;
  std::vector<uint8_t> dim_order;
  std::vector<int32_t> strides;
  std::vector<uint8_t> bytes;
  std::unique_ptr<executorch::aten::TensorImpl> impl;
};

// Every output must name a value of the plan: Method::get_output trusts the index and aborts on a
// bad one (ET_CHECK), after the whole run. MethodMeta::output_tag checks it and returns an error.
void check_outputs(const et::MethodMeta& meta, const Options& o) {
  for (size_t i = 0; i < meta.num_outputs(); i++) {
    auto tag = meta.output_tag(i);
    if (!tag.ok())
      fail("output " + std::to_string(i) + " of method '" + o.method + "' names no valid value" +
           et_error(tag.error()) + " — the .pte may be corrupt");
  }
}

// Input i's metadata checked, its bytes sized (and, without --inputs, filled) and its tensor made.
void init_input(InputTensor& in, const et::MethodMeta& meta, size_t i, const Options& o) {
  auto tag = meta.input_tag(i);
  if (!tag.ok() || *tag != et::Tag::Tensor)
    fail("input " + std::to_string(i) + " of method '" + o.method +
         "' is not a tensor; only tensor inputs are supported");
  auto info = meta.input_tensor_meta(i);
  if (!info.ok()) fail("cannot read metadata of input " + std::to_string(i) + et_error(info.error()));
  in.sizes.assign(info->sizes().begin(), info->sizes().end());
  in.dim_order.assign(info->dim_order().begin(), info->dim_order().end());
  in.strides.resize(in.sizes.size());
  // A corrupt dim order (not a permutation of the dims) made the unchecked stride computation
  // write past `strides`; a negative size would become a huge allocation below.
  bool sizes_ok = in.dim_order.size() == in.sizes.size();
  for (auto s : in.sizes) sizes_ok = sizes_ok && s >= 0;
  if (!sizes_ok || executorch::runtime::dim_order_to_stride(in.sizes.data(), in.dim_order.data(), in.sizes.size(),
                                                            in.strides.data()) != et::Error::Ok)
    fail("input " + std::to_string(i) + " of method '" + o.method + "' has an invalid shape or dim order (shape " +
         shape_str(info->sizes()) + ") — the .pte may be corrupt");
  in.bytes.resize(info->nbytes());
  if (o.inputs.empty()) {
    size_t elem = executorch::runtime::elementSize(info->scalar_type());
    deterministic_fill(info->scalar_type(), in.bytes.data(), elem ? info->nbytes() / elem : 0);
  }
  in.impl = std::make_unique<executorch::aten::TensorImpl>(
      info->scalar_type(), static_cast<ssize_t>(in.sizes.size()), in.sizes.data(),
      in.bytes.data(), in.dim_order.data(), in.strides.data());
}

// "float32[1,3,16,16], int64[4]": the inputs as the method declares them (all checked by init_input).
std::string input_layout(const et::MethodMeta& meta) {
  std::string layout;
  for (size_t i = 0; i < meta.num_inputs(); i++) {
    auto info = meta.input_tensor_meta(i);
    layout += (i ? ", " : "") + std::string(dtype_name(info->scalar_type())) + shape_str(info->sizes());
  }
  return layout;
}

// --inputs FILE: its size checked against the declared inputs (times --input-sets), then the
// first set read into the inputs.
void read_inputs_file(const Options& o, const et::MethodMeta& meta, std::vector<InputTensor>& ins) {
  size_t expected = 0;
  for (const auto& in : ins) expected += in.bytes.size();
  std::ifstream f(o.inputs, std::ios::binary | std::ios::ate);
  if (!f) fail("cannot open inputs file '" + o.inputs + "': " + std::strerror(errno));
  size_t got = static_cast<size_t>(f.tellg());
  if (got != expected * static_cast<size_t>(o.input_sets))
    fail("inputs file '" + o.inputs + "' has " + std::to_string(got) + " bytes, method '" +
         o.method + "' expects " + std::to_string(expected) + " (" + input_layout(meta) + ")" +
         (o.input_sets > 1 ? " x " + std::to_string(o.input_sets) + " sets" : ""));
  f.seekg(0);
  for (auto& in : ins)
    if (!f.read(reinterpret_cast<char*>(in.bytes.data()), in.bytes.size()))
      fail("cannot read inputs file '" + o.inputs + "'");
}

std::vector<InputTensor> make_inputs(const et::MethodMeta& meta, const Options& o) {
  std::vector<InputTensor> ins(meta.num_inputs());
  for (size_t i = 0; i < ins.size(); i++) init_input(ins[i], meta, i, o);
  if (!o.inputs.empty()) read_inputs_file(o, meta, ins);
  return ins;
}

// ---------------------------------------------------------------- process

std::vector<int> current_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

std::optional<std::vector<int>> pin_cpus(const std::vector<int>& cpus) {
  if (cpus.empty()) return std::nullopt;
  std::vector<int> allowed = current_cpus();
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) {
    if (std::find(allowed.begin(), allowed.end(), c) == allowed.end()) {
      std::string list;
      for (int a : allowed) list += (list.empty() ? "" : ",") + std::to_string(a);
      usage("--affinity: CPU " + std::to_string(c) + " is not available (allowed: " + list + ")");
    }
    CPU_SET(c, &set);
  }
  if (sched_setaffinity(0, sizeof(set), &set) != 0)
    fail(std::string("--affinity: sched_setaffinity failed: ") + std::strerror(errno));
  return current_cpus();  // what the kernel actually applied
}

// Opened before the (possibly long) run so a bad path fails at once.
std::unique_ptr<FILE, int (*)(FILE*)> open_for_write(const std::string& path, const char* what) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(nullptr, fclose);
  if (path.empty()) return f;
  f.reset(std::fopen(path.c_str(), "wb"));
  if (!f) fail(std::string("cannot write ") + what + " '" + path + "': " + std::strerror(errno));
  return f;
}

// Must run before load_method: the XNNPACK delegate captures the pool at init.
long set_threads(long requested) {
#ifdef QBENCH_HAVE_THREADPOOL
  auto* pool = executorch::extension::threadpool::get_threadpool();
  if (!pool) fail("cannot create the ExecuTorch thread pool");
  if (!pool->_unsafe_reset_threadpool(static_cast<uint32_t>(requested)))
    fail("cannot resize the thread pool to " + std::to_string(requested) + " threads");
  return static_cast<long>(pool->get_thread_count());
#else
  if (requested > 1) fail("this runner was built without a thread pool; use --threads 1");
  return 1;
#endif
}

long long peak_rss_bytes() {
  // VmHWM describes this program only. ru_maxrss would not: Linux carries it across exec, so a
  // runner started by a large parent (qbench with torch loaded) would report the parent's peak.
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;  // "VmHWM:   1234 kB"
  }
  struct rusage ru {};  // no /proc (a locked-down device): the next best figure
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<long long>(ru.ru_maxrss) * 1024;  // KiB on Linux and Android
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// ---------------------------------------------------------------- interference

// What else ran while we measured. The runner copies the raw kernel text (so the
// same parser in qbench reads it from any device: host, adb, ssh) and says why a
// source was unreadable instead of reporting a silent 0.

long long thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

std::string errno_text(const std::string& what) {
  return "cannot read " + what + ": " + std::strerror(errno);
}

struct Snapshot {
  Clock::time_point at;
  struct rusage usage {};
  std::vector<std::string> proc_stat;  // the per-core "cpuN ..." lines of /proc/stat, verbatim
  std::vector<std::string> schedstat;  // one "/proc/self/task/*/schedstat" line per thread
  std::map<std::string, std::string> unreadable;
};

Snapshot take_snapshot() {
  Snapshot s;
  s.at = Clock::now();
  getrusage(RUSAGE_SELF, &s.usage);
  std::ifstream stat("/proc/stat");
  if (!stat) {
    s.unreadable["proc_stat"] = errno_text("/proc/stat");
  } else {
    std::string line;
    while (std::getline(stat, line))
      if (line.size() > 3 && line.rfind("cpu", 0) == 0 && line[3] >= '0' && line[3] <= '9')
        s.proc_stat.push_back(line);
    if (s.proc_stat.empty()) s.unreadable["proc_stat"] = "/proc/stat has no per-core cpuN lines";
  }
  if (DIR* dir = opendir("/proc/self/task")) {
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream f(std::string("/proc/self/task/") + e->d_name + "/schedstat");
      std::string line;
      if (f && std::getline(f, line)) s.schedstat.push_back(line);
    }
    closedir(dir);
    if (s.schedstat.empty()) s.unreadable["schedstat"] = "no /proc/self/task/*/schedstat (kernel without CONFIG_SCHEDSTATS?)";
  } else {
    s.unreadable["schedstat"] = errno_text("/proc/self/task");
  }
  return s;
}

long long cpu_ns(const struct rusage& u) {
  return (static_cast<long long>(u.ru_utime.tv_sec) + u.ru_stime.tv_sec) * 1000000000LL +
         (static_cast<long long>(u.ru_utime.tv_usec) + u.ru_stime.tv_usec) * 1000LL;
}

// The cores' current frequencies (kHz), read at the end of the measured phase.
std::map<int, long long> core_freqs_khz(const std::vector<int>& cores, std::string& why) {
  std::map<int, long long> out;
  for (int c : cores) {
    std::string path = "/sys/devices/system/cpu/cpu" + std::to_string(c) + "/cpufreq/scaling_cur_freq";
    std::ifstream f(path);
    long long khz = 0;
    if (f && (f >> khz)) out[c] = khz;
    else if (why.empty()) why = f ? "unparsable " + path : errno_text(path);
  }
  return out;
}

struct Measurement {
  std::vector<long long> samples_ns, thread_cpu_ns;
  long warmup_iterations = 0;
  double warmup_seconds = 0;
  Snapshot before, after;
  std::vector<int> cores;
  std::map<int, long long> freqs_khz;
  std::string freq_unreadable;
};

const char* const kMeasureOom = " — the model, or the samples --max-iterations keeps, need more memory than the device has";

// Warm-up, then the measured phase; each phase runs until both N iterations and S
// seconds are reached (the measured one capped by max-iterations). Per measured
// iteration: wall time and this thread's CPU time; around the phase: snapshots.
template <typename Execute>
Measurement measure(const Options& o, Execute&& execute) {
  Measurement m;
  auto w0 = Clock::now();
  while (m.warmup_iterations < o.warmup ||
         std::chrono::duration<double>(Clock::now() - w0).count() < o.warmup_seconds) {
    execute();
    m.warmup_iterations++;
  }
  m.warmup_seconds = std::chrono::duration<double>(Clock::now() - w0).count();

  // a huge --iterations fails here, and the crash line must blame the count, not the program
  set_phase("reserving room for --iterations samples", " — lower iterations (every sample is kept)");
  m.samples_ns.reserve(static_cast<size_t>(o.iterations));
  m.thread_cpu_ns.reserve(static_cast<size_t>(o.iterations));
  set_phase("running the method", " — the .pte or its inputs may be malformed", kMeasureOom);
  m.cores = current_cpus();
  m.before = take_snapshot();
  auto m0 = Clock::now();
  while (static_cast<long>(m.samples_ns.size()) < o.max_iterations &&
         (static_cast<long>(m.samples_ns.size()) < o.iterations ||
          std::chrono::duration<double>(Clock::now() - m0).count() < o.min_seconds)) {
    auto s0 = Clock::now();
    long long c0 = thread_cpu_ns();  // inside the wall interval, so CPU <= wall
    execute();
    long long c1 = thread_cpu_ns();
    auto s1 = Clock::now();
    m.thread_cpu_ns.push_back(c1 - c0);
    m.samples_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(s1 - s0).count());
  }
  m.after = take_snapshot();
  m.freqs_khz = core_freqs_khz(m.cores, m.freq_unreadable);
  return m;
}

// ---------------------------------------------------------------- json

// {"0": 1800000, ...}: core id -> kHz.
void write_freqs(JsonWriter& w, const std::map<int, long long>& freqs_khz) {
  w.begin_object();
  for (const auto& [core, khz] : freqs_khz) w.member(std::to_string(core), khz);
  w.end_object();
}

// The "interference" object of the report (contract.md).
void write_interference(JsonWriter& w, const Measurement& m) {
  auto wall_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(m.after.at - m.before.at).count();
  std::map<std::string, std::string> unreadable = m.before.unreadable;
  if (!m.freq_unreadable.empty()) unreadable["cpufreq"] = m.freq_unreadable;
  w.begin_object();
  w.member("wall_ns", static_cast<long long>(wall_ns));
  w.member("process_cpu_ns", cpu_ns(m.after.usage) - cpu_ns(m.before.usage));
  w.member("voluntary_switches", m.after.usage.ru_nvcsw - m.before.usage.ru_nvcsw);
  w.member("involuntary_switches", m.after.usage.ru_nivcsw - m.before.usage.ru_nivcsw);
  w.member("cores", m.cores);
  w.member("clock_ticks_per_s", sysconf(_SC_CLK_TCK));
  w.member("proc_stat_before", m.before.proc_stat).member("proc_stat_after", m.after.proc_stat);
  w.member("schedstat_before", m.before.schedstat).member("schedstat_after", m.after.schedstat);
  write_freqs(w.key("cpufreq_khz"), m.freqs_khz);
  w.key("unreadable").begin_object();
  for (const auto& [what, why] : unreadable) w.member(what, why);
  w.end_object();
  w.end_object();
}

// ---------------------------------------------------------------- outputs

struct OutputInfo {
  std::string dtype;
  std::vector<long long> shape;
};

// --input-sets (device numerics): after timing, run every input set once and write the outputs of
// all but the last here; write_outputs then writes the last execution's, as always.
template <class Execute>
void run_input_sets(const Options& o, std::vector<InputTensor>& inputs, et::Method& method,
                    const Execute& execute, FILE* out_file) {
  std::ifstream sets(o.inputs, std::ios::binary);
  for (long k = 0; k < o.input_sets; k++) {
    for (auto& in : inputs)
      if (!sets.read(reinterpret_cast<char*>(in.bytes.data()), in.bytes.size()))
        fail("cannot read input set " + std::to_string(k) + " of '" + o.inputs + "'");
    execute();
    for (size_t i = 0; k + 1 < o.input_sets && out_file && i < method.outputs_size(); i++) {
      const et::EValue& v = method.get_output(i);
      if (!v.isTensor()) fail("--input-sets supports tensor outputs only (output " + std::to_string(i) + ")");
      const auto& t = v.toTensor();
      if (std::fwrite(t.const_data_ptr(), 1, t.nbytes(), out_file) != t.nbytes())
        fail("cannot write outputs file '" + o.outputs + "'");
    }
  }
}

// Dtypes and shapes of the last execution's outputs; their raw bytes go to `out_file` (the
// --outputs FILE, or none), which is closed here.
std::vector<OutputInfo> write_outputs(et::Method& method, std::unique_ptr<FILE, int (*)(FILE*)> out_file,
                                      const std::string& path) {
  std::vector<OutputInfo> outs;
  for (size_t i = 0; i < method.outputs_size(); i++) {
    const et::EValue& v = method.get_output(i);
    OutputInfo info;
    const void* data = nullptr;
    size_t nbytes = 0;
    int64_t i64;
    double f64;
    bool b;
    if (v.isTensor()) {
      const auto& t = v.toTensor();
      info.dtype = dtype_name(t.scalar_type());
      for (auto s : t.sizes()) info.shape.push_back(s);
      data = t.const_data_ptr();
      nbytes = t.nbytes();
    } else if (v.isInt()) {
      i64 = v.toInt(), info.dtype = "int64", data = &i64, nbytes = sizeof(i64);
    } else if (v.isDouble()) {
      f64 = v.toDouble(), info.dtype = "float64", data = &f64, nbytes = sizeof(f64);
    } else if (v.isBool()) {
      b = v.toBool(), info.dtype = "bool", data = &b, nbytes = sizeof(b);
    } else {
      info.dtype = "none";  // e.g. a None output: no bytes
    }
    if (out_file && nbytes && std::fwrite(data, 1, nbytes, out_file.get()) != nbytes)
      fail("cannot write outputs file '" + path + "'");
    outs.push_back(info);
  }
  if (out_file && std::fclose(out_file.release()) != 0) fail("cannot write outputs file '" + path + "'");
  return outs;
}

// ---------------------------------------------------------------- etdump

// The optional ETDump trace (--etdump FILE), like ExecuTorch's own executor_runner
// keeps it in an EventTraceManager: the file is opened up front (a bad path fails
// at once), the tracer is handed to load_method, and the dump is written at the end.
class EtdumpTrace {
 public:
  explicit EtdumpTrace(const std::string& path) : path_(path), file_(nullptr, fclose) {
#ifndef QBENCH_HAVE_ETDUMP
    if (!path.empty()) fail("this runner was built without ETDump support");
#else
    file_ = open_for_write(path, "ETDump file");
    if (!path.empty()) {
      gen_ = std::make_unique<executorch::etdump::ETDumpGen>();
      // Operator and delegate (XNNPACK per-op) timings; no tensor dumps.
      gen_->set_event_tracer_profiling_level(et::EventTracerProfilingLevel::kProfileAllEvents);
    }
#endif
  }

  et::EventTracer* tracer() {
#ifdef QBENCH_HAVE_ETDUMP
    return gen_.get();
#else
    return nullptr;
#endif
  }

  void write() {
#ifdef QBENCH_HAVE_ETDUMP
    if (!gen_) return;
    auto res = gen_->get_etdump_data();
    if (!res.buf || !res.size) fail("ETDump is empty (was the runtime built with the event tracer?)");
    std::unique_ptr<void, void (*)(void*)> buf(res.buf, std::free);
    bool ok = std::fwrite(res.buf, 1, res.size, file_.get()) == res.size;
    if (std::fclose(file_.release()) != 0) ok = false;
    if (!ok) fail("cannot write ETDump file '" + path_ + "'");
#endif
  }

 private:
  std::string path_;
  std::unique_ptr<FILE, int (*)(FILE*)> file_;
#ifdef QBENCH_HAVE_ETDUMP
  std::unique_ptr<executorch::etdump::ETDumpGen> gen_;
#endif
};

#include "generate.h"  // generation mode, inside this namespace

// ---------------------------------------------------------------- report

struct Report {
  double load_ms = 0, method_init_ms = 0, first_ms = 0;
  long threads = 1;
  std::optional<std::vector<int>> affinity;
  long long arena_bytes = 0;
  std::vector<OutputInfo> outputs;
  std::optional<GenerationFigures> generation;  // generation mode only (generate.h)
  std::optional<ScoreFigures> score;            // scoring mode only (generate.h), reported as "generation"
};

// Without --json: one line for a person.
void print_summary(const Options& o, const Report& r, const Measurement& m, long long rss) {
  std::vector<long long> s(m.samples_ns);
  std::sort(s.begin(), s.end());
  std::printf("%s: load %.2f ms, init %.2f ms, first %.2f ms, %zu samples, median %.3f ms, "
              "%ld threads, peak RSS %lld bytes\n",
              o.model.c_str(), r.load_ms, r.method_init_ms, r.first_ms, s.size(),
              s.empty() ? 0.0 : s[s.size() / 2] / 1e6, r.threads, rss);
}

// The report object of contract.md, its fields in the documented order.
std::string report_json(const Options& o, const Report& r, const Measurement& m, long long rss) {
  JsonWriter w;
  w.begin_object();
  w.member("runner", "native").member("method", o.method);
  w.member("load_ms", r.load_ms).member("method_init_ms", r.method_init_ms).member("first_inference_ms", r.first_ms);
  w.member("warmup_iterations", m.warmup_iterations).member("warmup_seconds", m.warmup_seconds);
  w.member("samples_ns", m.samples_ns).member("thread_cpu_ns", m.thread_cpu_ns);
  write_interference(w.key("interference"), m);
  w.member("threads", r.threads);
  if (r.affinity) w.member("affinity", *r.affinity);
  else w.key("affinity").null();
  w.member("peak_rss_bytes", rss).member("arena_bytes", r.arena_bytes);
  w.key("outputs").begin_array();
  for (const auto& out : r.outputs) w.begin_object().member("dtype", out.dtype).member("shape", out.shape).end_object();
  w.end_array();
  if (r.generation) write_generation(w.key("generation"), *r.generation);
  if (r.score) write_score(w.key("generation"), *r.score);
  w.end_object();
  return w.text();
}

void print_report(const Options& o, const Report& r, const Measurement& m) {
  long long rss = peak_rss_bytes();
  if (o.json) std::printf("%s\n", report_json(o, r, m, rss).c_str());
  else print_summary(o, r, m, rss);
}

// ---------------------------------------------------------------- program

// The Program keeps a pointer to its loader, so the loader lives on the heap and stays put.
struct LoadedProgram {
  std::unique_ptr<FileDataLoader> loader;
  et::Program program;
};

// Program::load: the file becomes a Program (header + flatbuffer parse). InternalConsistency
// runs the flatbuffer verifier first, so a corrupt or truncated .pte is an error, not a crash
// inside the parser; it is part of load_ms (microseconds for a small program).
LoadedProgram load_program(const std::string& path, double& load_ms) {
  set_phase("loading the program", " — the .pte may be corrupt");
  auto t0 = Clock::now();
  auto loader = FileDataLoader::from(path.c_str());
  if (!loader.ok()) fail("cannot read model '" + path + "'" + et_error(loader.error()));
  auto owned = std::make_unique<FileDataLoader>(std::move(*loader));
  auto program = et::Program::load(owned.get(), et::Program::Verification::InternalConsistency);
  load_ms = ms_since(t0);
  if (!program.ok())
    fail("cannot load program '" + path + "': not a valid ExecuTorch .pte file" + et_error(program.error()));
  return LoadedProgram{std::move(owned), std::move(*program)};
}

// The method's metadata, or an error naming the methods the program has.
et::MethodMeta find_method(const et::Program& program, const Options& o) {
  auto meta = program.method_meta(o.method.c_str());
  if (meta.ok()) return *meta;
  std::string names;
  for (size_t i = 0; i < program.num_methods(); i++) {
    auto n = program.get_method_name(i);
    if (n.ok()) names += (names.empty() ? "" : ", ") + std::string(*n);
  }
  fail("method '" + o.method + "' not found in '" + o.model + "' (available: " + names + ")");
}

// Memory-planned buffers, sized by the method's metadata, and the allocators the method uses.
// Not movable: the allocators and the MemoryManager point at each other and at the buffers.
class PlannedMemory {
 public:
  PlannedMemory(const et::MethodMeta& meta, const Options& o)
      : buffers_(allocate(meta, o)), spans_(spans_of(buffers_)), planned_({spans_.data(), spans_.size()}) {}
  PlannedMemory(const PlannedMemory&) = delete;
  PlannedMemory& operator=(const PlannedMemory&) = delete;

  long long bytes() const {
    long long n = 0;
    for (const auto& b : buffers_) n += static_cast<long long>(b.size());
    return n;
  }
  et::MemoryManager* manager() { return &manager_; }

 private:
  static std::vector<std::vector<uint8_t>> allocate(const et::MethodMeta& meta, const Options& o) {
    std::vector<std::vector<uint8_t>> buffers;
    for (size_t i = 0; i < meta.num_memory_planned_buffers(); i++) {
      auto size = meta.memory_planned_buffer_size(i);  // .get() on an error would abort
      if (!size.ok() || *size < 0)
        fail("memory-planned buffer " + std::to_string(i) + " of method '" + o.method + "' has no valid size" +
             (size.ok() ? " (" + std::to_string(*size) + " bytes)" : et_error(size.error())) +
             " — the .pte may be corrupt");
      buffers.emplace_back(static_cast<size_t>(*size));
    }
    return buffers;
  }

  static std::vector<et::Span<uint8_t>> spans_of(std::vector<std::vector<uint8_t>>& buffers) {
    std::vector<et::Span<uint8_t>> spans;
    for (auto& b : buffers) spans.emplace_back(b.data(), b.size());
    return spans;
  }

  std::vector<std::vector<uint8_t>> buffers_;
  std::vector<et::Span<uint8_t>> spans_;
  et::HierarchicalAllocator planned_;
  MallocMemoryAllocator method_allocator_, temp_allocator_;
  et::MemoryManager manager_{&method_allocator_, &planned_, &temp_allocator_};
};

// Method init: memory planning, kernel resolution, delegate init (XNNPACK builds its runtime and
// packs weights here).
et::Method init_method(et::Program& program, const Options& o, PlannedMemory& memory, EtdumpTrace& etdump,
                       double& method_init_ms) {
  set_phase("initialising the method", " — the .pte may be corrupt");
  auto t0 = Clock::now();
  auto method = program.load_method(o.method.c_str(), memory.manager(), etdump.tracer());
  method_init_ms = ms_since(t0);
  if (!method.ok()) fail("cannot initialise method '" + o.method + "'" + et_error(method.error()));
  return std::move(*method);
}

// ---------------------------------------------------------------- run

// Sets the inputs and executes once. Inputs are set before every execute, as an app does: the
// memory plan may reuse a planned input's bytes for intermediates once the input is consumed, so a
// second execute without set_input would read garbage. The copy is part of the timed iteration, as
// in the Python runner's method.execute(inputs).
class Executor {
 public:
  Executor(et::Method& method, std::vector<InputTensor>& inputs) : method_(method) {
    for (auto& in : inputs) values_.emplace_back(executorch::aten::Tensor(in.impl.get()));
  }

  void operator()() const {
    for (size_t i = 0; i < values_.size(); i++) {
      auto err = method_.set_input(values_[i], i);
      if (err != et::Error::Ok) fail("cannot set input " + std::to_string(i) + et_error(err));
    }
    auto err = method_.execute();
    if (err != et::Error::Ok) fail("execute failed" + et_error(err));
  }

 private:
  et::Method& method_;
  std::vector<et::EValue> values_;
};

// The inference trial: the first execute, warm-up and measured phase, then (--input-sets) every
// input set once; the last execution's outputs go to --outputs and the report.
Measurement run_inference(const Options& o, et::Method& method, std::vector<InputTensor>& inputs,
                          std::unique_ptr<FILE, int (*)(FILE*)> out_file, Report& r) {
  Executor execute(method, inputs);
  set_phase("running the method", " — the .pte or its inputs may be malformed", kMeasureOom);
  auto t0 = Clock::now();
  execute();
  r.first_ms = ms_since(t0);
  Measurement m = measure(o, execute);
  if (o.input_sets > 1) run_input_sets(o, inputs, method, execute, out_file.get());
  set_phase("writing the results", "");
  r.outputs = write_outputs(method, std::move(out_file), o.outputs);  // of the last execution
  return m;
}

int run(const Options& o) {
  Report r;
  r.affinity = pin_cpus(o.affinity);
  r.threads = set_threads(o.threads);  // before method init: the XNNPACK delegate captures the pool there
  if (access(o.model.c_str(), R_OK) != 0) fail("cannot open model '" + o.model + "': " + std::strerror(errno));
  auto out_file = open_for_write(o.outputs, "outputs file");
  EtdumpTrace etdump(o.etdump);
  LoadedProgram loaded = load_program(o.model, r.load_ms);
  et::MethodMeta meta = find_method(loaded.program, o);
  // Inputs are prepared (and size-checked) before the expensive method init; generation mode makes its own.
  bool generating = o.new_tokens > 0, scoring = o.window > 0;
  auto inputs = generating || scoring ? std::vector<InputTensor>() : make_inputs(meta, o);
  check_outputs(meta, o);
  PlannedMemory memory(meta, o);
  r.arena_bytes = memory.bytes();
  et::Method method = init_method(loaded.program, o, memory, etdump, r.method_init_ms);
  if (generating) {
    GenerationTrial trial = run_generation(o, method, std::move(out_file));
    r.first_ms = trial.first_ms;
    r.outputs = {OutputInfo{"float32", {1, trial.vocab}}};
    r.generation = trial.figures;
    print_report(o, r, trial.m);
    return 0;
  }
  if (scoring) {
    ScoreTrial trial = run_score(o, method, std::move(out_file));
    r.first_ms = trial.m.samples_ns.empty() ? 0 : trial.m.samples_ns[0] / 1e6;
    r.outputs = {OutputInfo{"float32", {1, trial.vocab}}};
    r.score = trial.figures;
    print_report(o, r, trial.m);
    return 0;
  }
  Measurement m = run_inference(o, method, inputs, std::move(out_file), r);
  etdump.write();
  print_report(o, r, m);
  return 0;
}
} // namespace

int main(int argc, char** argv) {
  install_crash_handlers();
  et::register_pal(et::PalImpl::create(et_log, __FILE__));
  et::runtime_init();
  int code;
  std::string error;
  try {
    code = run(parse_args(argc, argv));
  } catch (const Failure& e) {
    code = e.code;
    error = e.what();
  } catch (const std::bad_alloc&) {
    code = 1;
    error = std::string("out of memory while ") + g_phase + g_oom_hint;
  } catch (const std::exception& e) {
    code = 1;
    error = std::string("internal error: ") + e.what();
  }
  // Everything ExecuTorch owns is destroyed by now, so this line is the last.
  std::fflush(stdout);
  if (!error.empty()) std::fprintf(stderr, "qbench-runner: %s\n", error.c_str());
  std::fflush(stderr);
  // Skip static destructors (thread pool teardown may log after our line).
  std::_Exit(code);
}
