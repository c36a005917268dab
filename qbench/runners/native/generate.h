// Generation mode (--prompt-tokens P --new-tokens N [--seed S]), included by qbench_runner.cpp (not a standalone header)
// inside its anonymous namespace. For a causal LM whose KV cache lives in the program (mutable
// buffers): forward(input_ids int64 [1, T], cache_position int64 [T]) -> logits [1, vocab].
// One generation = a prefill of P seeded token ids, then N decode steps, each feeding the previous
// greedy token (argmax here, in the runner). --warmup/--iterations/--min-seconds/--max-iterations
// count whole generations; every decode step is a sample (samples_ns, thread_cpu_ns).
// See qbench/runners/contract.md, "Generation mode".

// The seeded prompt: the same 64-bit LCG as qbench.models.causal_lm.prompt_ids.
std::vector<int64_t> prompt_ids(long seed, long count, int64_t vocab) {
  const uint64_t mul = 6364136223846793005ULL, add = 1442695040888963407ULL;
  uint64_t state = static_cast<uint64_t>(seed) * mul + add;
  std::vector<int64_t> ids;
  for (long i = 0; i < count; i++) {
    state = state * mul + add;
    ids.push_back(static_cast<int64_t>((state >> 33) % static_cast<uint64_t>(vocab)));
  }
  return ids;
}

// One forward call on token ids at positions start..; returns the logits tensor's data.
class Stepper {
 public:
  explicit Stepper(et::Method& method) : method_(method) {}

  const float* step(const std::vector<int64_t>& ids, int64_t start) {
    ids_ = ids;
    positions_.resize(ids.size());
    for (size_t i = 0; i < ids.size(); i++) positions_[i] = start + static_cast<int64_t>(i);
    id_sizes_[1] = pos_sizes_[0] = static_cast<int32_t>(ids.size());
    id_strides_[0] = id_sizes_[1];
    executorch::aten::TensorImpl id_impl(ScalarType::Long, 2, id_sizes_, ids_.data(), id_order_, id_strides_);
    executorch::aten::TensorImpl pos_impl(ScalarType::Long, 1, pos_sizes_, positions_.data(), pos_order_, pos_strides_);
    et::EValue in0{executorch::aten::Tensor(&id_impl)}, in1{executorch::aten::Tensor(&pos_impl)};
    for (auto [value, index] : {std::pair<et::EValue*, size_t>{&in0, 0}, {&in1, 1}}) {
      auto err = method_.set_input(*value, index);
      if (err != et::Error::Ok) fail("cannot set generation input " + std::to_string(index) + et_error(err));
    }
    auto err = method_.execute();
    if (err != et::Error::Ok) fail("generation step at position " + std::to_string(start) + " failed" + et_error(err));
    const et::EValue& out = method_.get_output(0);
    if (!out.isTensor() || out.toTensor().scalar_type() != ScalarType::Float)
      fail("generation mode needs a float32 logits output [1, vocab]");
    return out.toTensor().const_data_ptr<float>();
  }

 private:
  et::Method& method_;
  std::vector<int64_t> ids_, positions_;
  int32_t id_sizes_[2] = {1, 1}, pos_sizes_[1] = {1};
  uint8_t id_order_[2] = {0, 1}, pos_order_[1] = {0};
  int32_t id_strides_[2] = {1, 1}, pos_strides_[1] = {1};
};

int64_t argmax(const float* logits, int64_t vocab) {
  return static_cast<int64_t>(std::max_element(logits, logits + vocab) - logits);
}

struct Generation {
  long long prefill_ns = 0;
  std::vector<long long> steps_ns, steps_cpu_ns;
  std::vector<int64_t> tokens;
};

// A prefill then N greedy decode steps; with `logits_out`, each step's logits are written there.
Generation generate_once(const Options& o, Stepper& stepper, const std::vector<int64_t>& prompt, int64_t vocab,
                         FILE* logits_out = nullptr) {
  Generation g;
  auto keep = [&](const float* logits) {
    size_t n = static_cast<size_t>(vocab);
    if (logits_out && std::fwrite(logits, sizeof(float), n, logits_out) != n)
      fail("cannot write outputs file '" + o.outputs + "'");
  };
  auto t0 = Clock::now();
  const float* logits = stepper.step(prompt, 0);
  g.tokens.push_back(argmax(logits, vocab));
  g.prefill_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
  keep(logits);
  for (long k = 0; k < o.new_tokens; k++) {
    auto s0 = Clock::now();
    long long c0 = thread_cpu_ns();
    logits = stepper.step({g.tokens.back()}, static_cast<int64_t>(prompt.size()) + k);
    g.tokens.push_back(argmax(logits, vocab));
    long long c1 = thread_cpu_ns();
    g.steps_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - s0).count());
    g.steps_cpu_ns.push_back(c1 - c0);
    keep(logits);
  }
  return g;
}

std::string generation_json(const Options& o, const std::vector<Generation>& runs, const Generation& first) {
  std::vector<long long> prefill, decode, tokens(first.tokens.begin(), first.tokens.end());
  for (const auto& g : runs) {
    prefill.push_back(g.prefill_ns);
    long long total = 0;
    for (auto ns : g.steps_ns) total += ns;
    decode.push_back(total);
  }
  return "{\"prompt_tokens\": " + std::to_string(o.prompt_tokens) + ", \"new_tokens\": " +
         std::to_string(o.new_tokens) + ", \"seed\": " + std::to_string(o.seed) + ", \"generations\": " +
         std::to_string(runs.size()) + ", \"prefill_ns\": " + json_list(prefill) + ", \"decode_ns\": " +
         json_list(decode) + ", \"tokens\": " + json_list(tokens) + "}";
}

// The generation-mode trial: first generation, warm-up and measured generations, report.
int run_generation(const Options& o, et::Method& method, Report r, std::unique_ptr<FILE, int (*)(FILE*)> out_file) {
  auto out_meta = method.method_meta().output_tensor_meta(0);
  if (!out_meta.ok() || out_meta->sizes().empty()) fail("generation mode needs a logits output [1, vocab]");
  int64_t vocab = out_meta->sizes()[out_meta->sizes().size() - 1];
  auto prompt = prompt_ids(o.seed, o.prompt_tokens, vocab);
  Stepper stepper(method);
  set_phase("running the method", " — the .pte may not be a generation program (forward(input_ids, cache_position))");
  auto t0 = Clock::now();
  Generation first = generate_once(o, stepper, prompt, vocab);
  r.first_ms = ms_since(t0);

  Measurement m;
  auto w0 = Clock::now();
  while (m.warmup_iterations < o.warmup ||
         std::chrono::duration<double>(Clock::now() - w0).count() < o.warmup_seconds) {
    generate_once(o, stepper, prompt, vocab);
    if (++m.warmup_iterations >= std::max(o.warmup, o.max_iterations)) break;
  }
  m.warmup_seconds = std::chrono::duration<double>(Clock::now() - w0).count();
  std::vector<Generation> runs;
  m.cores = current_cpus();
  m.before = take_snapshot();
  auto m0 = Clock::now();
  while (static_cast<long>(runs.size()) < o.max_iterations &&
         (static_cast<long>(runs.size()) < o.iterations ||
          std::chrono::duration<double>(Clock::now() - m0).count() < o.min_seconds)) {
    runs.push_back(generate_once(o, stepper, prompt, vocab));
    m.samples_ns.insert(m.samples_ns.end(), runs.back().steps_ns.begin(), runs.back().steps_ns.end());
    m.thread_cpu_ns.insert(m.thread_cpu_ns.end(), runs.back().steps_cpu_ns.begin(), runs.back().steps_cpu_ns.end());
  }
  m.after = take_snapshot();
  m.freqs_khz = core_freqs_khz(m.cores, m.freq_unreadable);

  set_phase("writing the results", "");
  if (out_file) {  // one more generation, its logits per step (device numerics)
    generate_once(o, stepper, prompt, vocab, out_file.get());
    if (std::fclose(out_file.release()) != 0) fail("cannot write outputs file '" + o.outputs + "'");
  }
  r.outputs = {OutputInfo{"float32", {1, vocab}}};
  r.generation = generation_json(o, runs, first);
  print_report(o, r, m);
  return 0;
}

// ---- Scoring mode (--score-tokens FILE --window W): teacher forcing, for perplexity.
// FILE holds whole windows of W int64 token ids. Each window starts again at position 0 (entries
// the cache holds beyond the current position are masked by position, as in each generation) and
// feeds its own tokens one by one; after token i the runner takes the NLL of token i+1 under the
// logits (log-softmax in double, here: shipping the logits back would be vocab × tokens floats).
// W-1 tokens are scored per window; each step is a sample. --outputs gets each NLL (float32).

std::vector<int64_t> read_score_tokens(const Options& o, int64_t vocab) {
  std::ifstream f(o.score_tokens, std::ios::binary | std::ios::ate);
  if (!f) fail("cannot read score tokens '" + o.score_tokens + "': " + std::strerror(errno));
  auto bytes = static_cast<long long>(f.tellg());
  long long per_window = o.window * static_cast<long long>(sizeof(int64_t));
  if (bytes <= 0 || bytes % per_window != 0)
    fail("score tokens '" + o.score_tokens + "' hold " + std::to_string(bytes) + " bytes, not whole windows of " +
         std::to_string(o.window) + " int64 token ids");
  std::vector<int64_t> ids(static_cast<size_t>(bytes / 8));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(ids.data()), bytes);
  for (auto id : ids)
    if (id < 0 || id >= vocab)
      fail("score token id " + std::to_string(id) + " is outside the program's vocabulary (" + std::to_string(vocab) + ")");
  return ids;
}

// -log softmax(logits)[target], in double.
double token_nll(const float* logits, int64_t vocab, int64_t target) {
  double top = *std::max_element(logits, logits + vocab), sum = 0;
  for (int64_t i = 0; i < vocab; i++) sum += std::exp(static_cast<double>(logits[i]) - top);
  return std::log(sum) + top - static_cast<double>(logits[target]);
}

int run_score(const Options& o, et::Method& method, Report r, std::unique_ptr<FILE, int (*)(FILE*)> out_file) {
  auto out_meta = method.method_meta().output_tensor_meta(0);
  if (!out_meta.ok() || out_meta->sizes().empty()) fail("scoring mode needs a logits output [1, vocab]");
  int64_t vocab = out_meta->sizes()[out_meta->sizes().size() - 1];
  auto ids = read_score_tokens(o, vocab);
  Stepper stepper(method);
  set_phase("running the method", " — the .pte may not be a generation program (forward(input_ids, cache_position))");
  Measurement m;
  m.cores = current_cpus();
  m.before = take_snapshot();
  double nll_sum = 0;
  long windows = static_cast<long>(ids.size()) / o.window, scored = 0;
  for (long w = 0; w < windows; w++) {
    const int64_t* window = ids.data() + w * o.window;
    for (long i = 0; i + 1 < o.window; i++) {
      auto s0 = Clock::now();
      long long c0 = thread_cpu_ns();
      double nll = token_nll(stepper.step({window[i]}, i), vocab, window[i + 1]);
      m.thread_cpu_ns.push_back(thread_cpu_ns() - c0);
      m.samples_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - s0).count());
      nll_sum += nll, scored++;
      float value = static_cast<float>(nll);
      if (out_file && std::fwrite(&value, sizeof(float), 1, out_file.get()) != 1)
        fail("cannot write outputs file '" + o.outputs + "'");
    }
  }
  m.after = take_snapshot();
  m.freqs_khz = core_freqs_khz(m.cores, m.freq_unreadable);
  set_phase("writing the results", "");
  if (out_file && std::fclose(out_file.release()) != 0) fail("cannot write outputs file '" + o.outputs + "'");
  r.first_ms = m.samples_ns.empty() ? 0 : m.samples_ns[0] / 1e6;
  r.outputs = {OutputInfo{"float32", {1, vocab}}};
  r.generation = "{\"mode\": \"score\", \"window\": " + std::to_string(o.window) + ", \"windows\": " +
                 std::to_string(windows) + ", \"scored_tokens\": " + std::to_string(scored) +
                 ", \"nll_sum\": " + json_num(nll_sum) + "}";
  print_report(o, r, m);
  return 0;
}
