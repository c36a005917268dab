// qbench native runner: loads one ExecuTorch .pte, times load / method init /
// first inference / steady state, and prints one JSON object (see
// qbench/runners/contract.md for the flags and fields).
//
// Errors: exit non-zero, and the LAST stderr line is `qbench-runner: <cause>`.
// ExecuTorch's own error logs are forwarded to stderr before it (prefixed
// `executorch:`), so the caller can still see them while taking the last line.

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
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

#ifdef QBENCH_HAVE_THREADPOOL
// The wheel ships libexecutorch_threadpool.so but not threadpool.h (it needs
// pthreadpool.h), so declare the two exported members we call. Signatures match
// extension/threadpool/threadpool.h; only member functions are used, never the
// layout, so this declaration is enough to link against the library.
namespace executorch::extension::threadpool {
class ThreadPool final {
 public:
  size_t get_thread_count() const;
  bool _unsafe_reset_threadpool(uint32_t num_threads);
};
ThreadPool* get_threadpool();
} // namespace executorch::extension::threadpool
#endif

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
    if (flag == "--help" || flag == "-h") {
      std::printf(
          "usage: qbench_runner --model PTE [--method NAME] [--warmup N] [--warmup-seconds S]\n"
          "  [--iterations N] [--min-seconds S] [--max-iterations N] [--threads N]\n"
          "  [--affinity 0,1,2] [--inputs FILE] [--outputs FILE] [--etdump FILE] [--json]\n"
          "  [--input-sets N]   (N input sets in --inputs; --outputs gets the outputs of each)\n");
      std::exit(0);
    }
    auto next = [&]() -> std::string {
      if (has_inline) return value;
      if (i + 1 >= argc) usage(flag + " needs a value");
      return argv[++i];
    };
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
    else usage("unknown flag '" + flag + "' (see --help)");
  }
  if (o.model.empty()) usage("--model is required");
  if (o.max_iterations < o.iterations) usage("--max-iterations must be >= --iterations");
  if (o.input_sets > 1 && o.inputs.empty()) usage("--input-sets needs --inputs");
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

std::vector<InputTensor> make_inputs(const et::MethodMeta& meta, const Options& o) {
  std::vector<InputTensor> ins(meta.num_inputs());
  size_t expected = 0;
  std::string layout;
  for (size_t i = 0; i < ins.size(); i++) {
    auto tag = meta.input_tag(i);
    if (!tag.ok() || *tag != et::Tag::Tensor)
      fail("input " + std::to_string(i) + " of method '" + o.method +
           "' is not a tensor; only tensor inputs are supported");
    auto info = meta.input_tensor_meta(i);
    if (!info.ok()) fail("cannot read metadata of input " + std::to_string(i) + et_error(info.error()));
    auto& in = ins[i];
    in.sizes.assign(info->sizes().begin(), info->sizes().end());
    in.dim_order.assign(info->dim_order().begin(), info->dim_order().end());
    in.strides.resize(in.sizes.size());
    if (!in.sizes.empty())
      executorch::runtime::dim_order_to_stride_nocheck(
          in.sizes.data(), in.dim_order.data(), in.sizes.size(), in.strides.data());
    in.bytes.resize(info->nbytes());
    expected += info->nbytes();
    layout += (i ? ", " : "") + std::string(dtype_name(info->scalar_type())) +
              shape_str(info->sizes());
    if (o.inputs.empty()) {
      size_t elem = executorch::runtime::elementSize(info->scalar_type());
      deterministic_fill(info->scalar_type(), in.bytes.data(), elem ? info->nbytes() / elem : 0);
    }
    in.impl = std::make_unique<executorch::aten::TensorImpl>(
        info->scalar_type(), static_cast<ssize_t>(in.sizes.size()), in.sizes.data(),
        in.bytes.data(), in.dim_order.data(), in.strides.data());
  }
  if (!o.inputs.empty()) {
    std::ifstream f(o.inputs, std::ios::binary | std::ios::ate);
    if (!f) fail("cannot open inputs file '" + o.inputs + "': " + std::strerror(errno));
    size_t got = static_cast<size_t>(f.tellg());
    if (got != expected * static_cast<size_t>(o.input_sets))
      fail("inputs file '" + o.inputs + "' has " + std::to_string(got) + " bytes, method '" +
           o.method + "' expects " + std::to_string(expected) + " (" + layout + ")" +
           (o.input_sets > 1 ? " x " + std::to_string(o.input_sets) + " sets" : ""));
    f.seekg(0);
    for (auto& in : ins)
      if (!f.read(reinterpret_cast<char*>(in.bytes.data()), in.bytes.size()))
        fail("cannot read inputs file '" + o.inputs + "'");
  }
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
#ifdef __linux__
  // VmHWM describes this program only. ru_maxrss would not: Linux carries it across exec, so a
  // runner started by a large parent (qbench with torch loaded) would report the parent's peak.
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;  // "VmHWM:   1234 kB"
  }
#endif
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
#ifdef __APPLE__
  return ru.ru_maxrss;  // bytes on macOS
#else
  return static_cast<long long>(ru.ru_maxrss) * 1024;  // KiB on Linux/Android
#endif
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// ---------------------------------------------------------------- json

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else out += c;
  }
  return out + "\"";
}

std::string json_num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6f", x);
  return buf;
}

struct OutputInfo {
  std::string dtype;
  std::vector<long long> shape;
};

// ---------------------------------------------------------------- run

int run(const Options& o) {
  auto affinity = pin_cpus(o.affinity);
  long threads = set_threads(o.threads);

  if (access(o.model.c_str(), R_OK) != 0)
    fail("cannot open model '" + o.model + "': " + std::strerror(errno));
#ifndef QBENCH_HAVE_ETDUMP
  if (!o.etdump.empty()) fail("this runner was built without ETDump support");
#endif
  auto out_file = open_for_write(o.outputs, "outputs file");
  auto etdump_file = open_for_write(o.etdump, "ETDump file");

  // Program::load: the file becomes a Program (header + flatbuffer parse).
  auto t0 = Clock::now();
  auto loader = FileDataLoader::from(o.model.c_str());
  if (!loader.ok()) fail("cannot read model '" + o.model + "'" + et_error(loader.error()));
  auto program = et::Program::load(&loader.get());
  double load_ms = ms_since(t0);
  if (!program.ok())
    fail("cannot load program '" + o.model + "': not a valid ExecuTorch .pte file" +
         et_error(program.error()));

  auto meta = program->method_meta(o.method.c_str());
  if (!meta.ok()) {
    std::string names;
    for (size_t i = 0; i < program->num_methods(); i++) {
      auto n = program->get_method_name(i);
      if (n.ok()) names += (names.empty() ? "" : ", ") + std::string(*n);
    }
    fail("method '" + o.method + "' not found in '" + o.model + "' (available: " + names + ")");
  }

  // Inputs are prepared (and size-checked) before the expensive method init.
  auto inputs = make_inputs(*meta, o);

  // Memory-planned buffers, sized by the method's metadata.
  std::vector<std::vector<uint8_t>> planned;
  std::vector<et::Span<uint8_t>> spans;
  long long arena_bytes = 0;
  for (size_t i = 0; i < meta->num_memory_planned_buffers(); i++) {
    size_t n = static_cast<size_t>(meta->memory_planned_buffer_size(i).get());
    arena_bytes += static_cast<long long>(n);
    planned.emplace_back(n);
  }
  for (auto& b : planned) spans.emplace_back(b.data(), b.size());
  et::HierarchicalAllocator planned_memory({spans.data(), spans.size()});
  MallocMemoryAllocator method_allocator, temp_allocator;
  et::MemoryManager memory_manager(&method_allocator, &planned_memory, &temp_allocator);

  et::EventTracer* tracer = nullptr;
#ifdef QBENCH_HAVE_ETDUMP
  std::unique_ptr<executorch::etdump::ETDumpGen> etdump;
  if (!o.etdump.empty()) {
    etdump = std::make_unique<executorch::etdump::ETDumpGen>();
    // Operator and delegate (XNNPACK per-op) timings; no tensor dumps.
    etdump->set_event_tracer_profiling_level(et::EventTracerProfilingLevel::kProfileAllEvents);
    tracer = etdump.get();
  }
#endif

  // Method init: memory planning, kernel resolution, delegate init (XNNPACK
  // builds its runtime and packs weights here).
  t0 = Clock::now();
  auto method = program->load_method(o.method.c_str(), &memory_manager, tracer);
  double method_init_ms = ms_since(t0);
  if (!method.ok())
    fail("cannot initialise method '" + o.method + "'" + et_error(method.error()));

  // Inputs are set before every execute, as an app does: the memory plan may
  // reuse a planned input's bytes for intermediates once the input is consumed,
  // so a second execute without set_input would read garbage. The copy is part
  // of the timed iteration, as in the Python runner's method.execute(inputs).
  std::vector<et::EValue> input_values;
  for (auto& in : inputs) input_values.emplace_back(executorch::aten::Tensor(in.impl.get()));
  auto execute = [&]() {
    for (size_t i = 0; i < input_values.size(); i++) {
      auto err = method->set_input(input_values[i], i);
      if (err != et::Error::Ok) fail("cannot set input " + std::to_string(i) + et_error(err));
    }
    auto err = method->execute();
    if (err != et::Error::Ok) fail("execute failed" + et_error(err));
  };

  t0 = Clock::now();
  execute();
  double first_ms = ms_since(t0);

  // Warm-up: until both N iterations and S seconds are reached.
  long warm_n = 0;
  auto w0 = Clock::now();
  while (warm_n < o.warmup ||
         std::chrono::duration<double>(Clock::now() - w0).count() < o.warmup_seconds) {
    execute();
    warm_n++;
  }
  double warm_s = std::chrono::duration<double>(Clock::now() - w0).count();

  // Measured: until both N iterations and S seconds, capped by max-iterations.
  std::vector<long long> samples;
  samples.reserve(static_cast<size_t>(o.iterations));
  auto m0 = Clock::now();
  while (static_cast<long>(samples.size()) < o.max_iterations &&
         (static_cast<long>(samples.size()) < o.iterations ||
          std::chrono::duration<double>(Clock::now() - m0).count() < o.min_seconds)) {
    auto s0 = Clock::now();
    execute();
    samples.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - s0).count());
  }

  // ---- --input-sets (device numerics): after timing, run every input set once and write the
  // outputs of all but the last here; the block below writes the last execution's, as always.
  if (o.input_sets > 1) {
    std::ifstream sets(o.inputs, std::ios::binary);
    for (long k = 0; k < o.input_sets; k++) {
      for (auto& in : inputs)
        if (!sets.read(reinterpret_cast<char*>(in.bytes.data()), in.bytes.size()))
          fail("cannot read input set " + std::to_string(k) + " of '" + o.inputs + "'");
      execute();
      for (size_t i = 0; k + 1 < o.input_sets && out_file && i < method->outputs_size(); i++) {
        const et::EValue& v = method->get_output(i);
        if (!v.isTensor()) fail("--input-sets supports tensor outputs only (output " + std::to_string(i) + ")");
        const auto& t = v.toTensor();
        if (std::fwrite(t.const_data_ptr(), 1, t.nbytes(), out_file.get()) != t.nbytes())
          fail("cannot write outputs file '" + o.outputs + "'");
      }
    }
  }
  // ---- end --input-sets

  // Outputs of the last execution.
  std::vector<OutputInfo> outs;
  for (size_t i = 0; i < method->outputs_size(); i++) {
    const et::EValue& v = method->get_output(i);
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
      fail("cannot write outputs file '" + o.outputs + "'");
    outs.push_back(info);
  }
  if (out_file && std::fclose(out_file.release()) != 0)
    fail("cannot write outputs file '" + o.outputs + "'");

#ifdef QBENCH_HAVE_ETDUMP
  if (etdump) {
    auto res = etdump->get_etdump_data();
    if (!res.buf || !res.size) fail("ETDump is empty (was the runtime built with the event tracer?)");
    std::unique_ptr<void, void (*)(void*)> buf(res.buf, std::free);
    bool ok = std::fwrite(res.buf, 1, res.size, etdump_file.get()) == res.size;
    if (std::fclose(etdump_file.release()) != 0) ok = false;
    if (!ok) fail("cannot write ETDump file '" + o.etdump + "'");
  }
#endif

  long long rss = peak_rss_bytes();
  std::string j = "{";
  j += "\"runner\": \"native\"";
  j += ", \"method\": " + json_str(o.method);
  j += ", \"load_ms\": " + json_num(load_ms);
  j += ", \"method_init_ms\": " + json_num(method_init_ms);
  j += ", \"first_inference_ms\": " + json_num(first_ms);
  j += ", \"warmup_iterations\": " + std::to_string(warm_n);
  j += ", \"warmup_seconds\": " + json_num(warm_s);
  j += ", \"samples_ns\": [";
  for (size_t i = 0; i < samples.size(); i++) j += (i ? ", " : "") + std::to_string(samples[i]);
  j += "], \"threads\": " + std::to_string(threads);
  j += ", \"affinity\": ";
  if (affinity) {
    j += "[";
    for (size_t i = 0; i < affinity->size(); i++) j += (i ? ", " : "") + std::to_string((*affinity)[i]);
    j += "]";
  } else {
    j += "null";
  }
  j += ", \"peak_rss_bytes\": " + std::to_string(rss);
  j += ", \"arena_bytes\": " + std::to_string(arena_bytes);
  j += ", \"outputs\": [";
  for (size_t i = 0; i < outs.size(); i++) {
    j += (i ? ", " : "") + std::string("{\"dtype\": ") + json_str(outs[i].dtype) + ", \"shape\": [";
    for (size_t k = 0; k < outs[i].shape.size(); k++)
      j += (k ? ", " : "") + std::to_string(outs[i].shape[k]);
    j += "]}";
  }
  j += "]}";

  if (o.json) {
    std::printf("%s\n", j.c_str());
  } else {
    std::vector<long long> s(samples);
    std::sort(s.begin(), s.end());
    std::printf("%s: load %.2f ms, init %.2f ms, first %.2f ms, %zu samples, median %.3f ms, "
                "%ld threads, peak RSS %lld bytes\n",
                o.model.c_str(), load_ms, method_init_ms, first_ms, s.size(),
                s.empty() ? 0.0 : s[s.size() / 2] / 1e6, threads, rss);
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  et::register_pal(et::PalImpl::create(et_log, __FILE__));
  et::runtime_init();
  int code;
  std::string error;
  try {
    code = run(parse_args(argc, argv));
  } catch (const Failure& e) {
    code = e.code;
    error = e.what();
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
