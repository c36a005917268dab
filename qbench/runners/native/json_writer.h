// A small JSON writer for the runner's report (qbench/runners/contract.md), in the layout the report
// has always had: `{"key": value, "key": [1, 2]}` (", " between elements, ": " after a key).
// qbench reads it with Python's json.loads (runners/base.py).
#pragma once

#include <cmath>
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

class JsonWriter {
 public:
  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }

  // The name of the next value, inside an object.
  JsonWriter& key(const std::string& name) {
    separate();
    out_ += quoted(name) + ": ";
    after_key_ = true;
    return *this;
  }

  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  JsonWriter& value(T x) {
    separate();
    out_ += std::to_string(x);
    return *this;
  }

  // Six decimals (durations in ms or s). A non-finite number is spelled as Python's json module
  // writes and reads it (NaN, Infinity, -Infinity): printf's "nan"/"inf" would not parse.
  JsonWriter& value(double x) {
    separate();
    if (std::isnan(x)) {
      out_ += "NaN";
    } else if (std::isinf(x)) {
      out_ += x > 0 ? "Infinity" : "-Infinity";
    } else {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%.6f", x);
      out_ += buf;
    }
    return *this;
  }

  JsonWriter& value(const std::string& s) {
    separate();
    out_ += quoted(s);
    return *this;
  }
  JsonWriter& value(const char* s) { return value(std::string(s)); }

  JsonWriter& null() {
    separate();
    out_ += "null";
    return *this;
  }

  // [x, y, ...] of numbers or strings.
  template <class T>
  JsonWriter& array(const std::vector<T>& xs) {
    begin_array();
    for (const auto& x : xs) value(x);
    return end_array();
  }

  // "name": value, the common case.
  template <class T>
  JsonWriter& member(const std::string& name, const T& x) {
    key(name);
    return value(x);
  }
  template <class T>
  JsonWriter& member(const std::string& name, const std::vector<T>& xs) {
    key(name);
    return array(xs);
  }

  const std::string& text() const { return out_; }

 private:
  // A string literal: quote and backslash escaped, control characters as \u00XX; other bytes
  // (UTF-8 text from /proc, paths, strerror) pass through.
  static std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
        out += buf;
      } else {
        out += c;
      }
    }
    return out + "\"";
  }

  // ", " before every element of a container but its first (a value right after its key is that
  // member's, not a new element).
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!has_element_.empty()) {
      if (has_element_.back()) out_ += ", ";
      has_element_.back() = true;
    }
  }

  JsonWriter& open(char bracket) {
    separate();
    out_ += bracket;
    has_element_.push_back(false);
    return *this;
  }

  JsonWriter& close(char bracket) {
    has_element_.pop_back();
    out_ += bracket;
    return *this;
  }

  std::string out_;
  std::vector<bool> has_element_;  // per open container: has it an element yet
  bool after_key_ = false;
};
