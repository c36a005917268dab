// Generation mode (--prompt-tokens P --new-tokens N [--seed S]), included by qbench_runner.cpp (not a standalone header)
// inside its anonymous namespace, after measure(); run() prints the report. For a causal LM whose KV cache lives in
// the program (mutable buffers): forward(input_ids int64 [1, T], cache_position int64 [T]) -> logits [1, vocab].
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

// The report's "generation" figures (contract.md, "Generation mode").
struct GenerationFigures {
  long prompt_tokens = 0, new_tokens = 0, seed = 0;
  std::vector<long long> prefill_ns, decode_ns;  // per measured generation
  std::vector<int64_t> tokens;                   // the first generation's greedy tokens
  size_t generations = 0;
};

GenerationFigures generation_figures(const Options& o, const std::vector<Generation>& runs, const Generation& first) {
  GenerationFigures f;
  f.prompt_tokens = o.prompt_tokens, f.new_tokens = o.new_tokens, f.seed = o.seed;
  f.generations = runs.size();
  f.tokens = first.tokens;
  for (const auto& g : runs) {
    f.prefill_ns.push_back(g.prefill_ns);
    long long total = 0;
    for (auto ns : g.steps_ns) total += ns;
    f.decode_ns.push_back(total);
  }
  return f;
}

void write_generation(JsonWriter& w, const GenerationFigures& f) {
  w.begin_object();
  w.member("prompt_tokens", f.prompt_tokens).member("new_tokens", f.new_tokens).member("seed", f.seed);
  w.member("generations", f.generations);
  w.member("prefill_ns", f.prefill_ns).member("decode_ns", f.decode_ns).member("tokens", f.tokens);
  w.end_object();
}

// What a generation-mode trial measured; run() reports it.
struct GenerationTrial {
  double first_ms = 0;  // the first generation, whole
  Measurement m;        // warm-up and measured generations; samples are decode steps
  GenerationFigures figures;
  int64_t vocab = 0;
};

// Warm-up, then the measured phase, in whole generations (as measure() does with executions);
// every measured decode step is a sample.
std::vector<Generation> measure_generations(const Options& o, Stepper& stepper, const std::vector<int64_t>& prompt,
                                            int64_t vocab, Measurement& m) {
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
  return runs;
}

// The generation-mode trial: first generation, warm-up and measured generations, and (with
// --outputs) one more generation whose logits per step are written (device numerics).
GenerationTrial run_generation(const Options& o, et::Method& method, std::unique_ptr<FILE, int (*)(FILE*)> out_file) {
  GenerationTrial trial;
  auto out_meta = method.method_meta().output_tensor_meta(0);
  if (!out_meta.ok() || out_meta->sizes().empty()) fail("generation mode needs a logits output [1, vocab]");
  trial.vocab = out_meta->sizes()[out_meta->sizes().size() - 1];
  auto prompt = prompt_ids(o.seed, o.prompt_tokens, trial.vocab);
  Stepper stepper(method);
  set_phase("running the method", " — the .pte may not be a generation program (forward(input_ids, cache_position))");
  auto t0 = Clock::now();
  Generation first = generate_once(o, stepper, prompt, trial.vocab);
  trial.first_ms = ms_since(t0);
  auto runs = measure_generations(o, stepper, prompt, trial.vocab, trial.m);

  set_phase("writing the results", "");
  if (out_file) {
    generate_once(o, stepper, prompt, trial.vocab, out_file.get());
    if (std::fclose(out_file.release()) != 0) fail("cannot write outputs file '" + o.outputs + "'");
  }
  trial.figures = generation_figures(o, runs, first);
  return trial;
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

struct ScoreFigures {
  long window = 0, windows = 0, scored_tokens = 0;
  double nll_sum = 0;
};

void write_score(JsonWriter& w, const ScoreFigures& f) {
  w.begin_object();
  w.member("mode", "score").member("window", f.window).member("windows", f.windows);
  w.member("scored_tokens", f.scored_tokens).member("nll_sum", f.nll_sum);
  w.end_object();
}

// What a scoring-mode trial measured; run() reports it.
struct ScoreTrial {
  Measurement m;  // every scored step is a sample
  ScoreFigures figures;
  int64_t vocab = 0;
};

ScoreTrial run_score(const Options& o, et::Method& method, std::unique_ptr<FILE, int (*)(FILE*)> out_file) {
  ScoreTrial trial;
  auto out_meta = method.method_meta().output_tensor_meta(0);
  if (!out_meta.ok() || out_meta->sizes().empty()) fail("scoring mode needs a logits output [1, vocab]");
  trial.vocab = out_meta->sizes()[out_meta->sizes().size() - 1];
  auto ids = read_score_tokens(o, trial.vocab);
  Stepper stepper(method);
  set_phase("running the method", " — the .pte may not be a generation program (forward(input_ids, cache_position))");
  Measurement& m = trial.m;
  ScoreFigures& f = trial.figures;
  m.cores = current_cpus();
  m.before = take_snapshot();
  f.window = o.window, f.windows = static_cast<long>(ids.size()) / o.window;
  for (long w = 0; w < f.windows; w++) {
    const int64_t* window = ids.data() + w * o.window;
    for (long i = 0; i + 1 < o.window; i++) {
      auto s0 = Clock::now();
      long long c0 = thread_cpu_ns();
      double nll = token_nll(stepper.step({window[i]}, i), trial.vocab, window[i + 1]);
      m.thread_cpu_ns.push_back(thread_cpu_ns() - c0);
      m.samples_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - s0).count());
      f.nll_sum += nll, f.scored_tokens++;
      float value = static_cast<float>(nll);
      if (out_file && std::fwrite(&value, sizeof(float), 1, out_file.get()) != 1)
        fail("cannot write outputs file '" + o.outputs + "'");
    }
  }
  m.after = take_snapshot();
  m.freqs_khz = core_freqs_khz(m.cores, m.freq_unreadable);
  set_phase("writing the results", "");
  if (out_file && std::fclose(out_file.release()) != 0) fail("cannot write outputs file '" + o.outputs + "'");
  return trial;
}
