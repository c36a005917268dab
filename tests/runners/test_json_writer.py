"""The native runner's JSON writer (native/json_writer.h), compiled on its own: the report layout
qbench has always read, strings escaped, and non-finite numbers spelled so Python's json reads them."""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import pytest

from qbench.runners.native_build import SOURCE_DIR

CXX = next((shutil.which(c) for c in ("c++", "g++", "clang++") if shutil.which(c)), None)
pytestmark = pytest.mark.skipif(CXX is None, reason="needs a C++ compiler")

PROGRAM = r"""
#include <cstdio>
#include <limits>
#include "json_writer.h"

int main() {
  JsonWriter w;
  w.begin_object();
  w.member("text", std::string("quote \" backslash \\ newline \n tab \t bell \a end"));
  w.member("utf8", "caf\xc3\xa9");
  w.member("ms", 1.5).member("count", 42L).member("big", 9007199254740993LL);
  w.member("nan", std::numeric_limits<double>::quiet_NaN());
  w.member("inf", std::numeric_limits<double>::infinity());
  w.member("neg_inf", -std::numeric_limits<double>::infinity());
  w.member("ints", std::vector<int>{1, 2, 3}).member("names", std::vector<std::string>{"a", "b"});
  w.member("empty_list", std::vector<long long>{});
  w.key("empty_object").begin_object().end_object();
  w.key("none").null();
  w.key("nested").begin_array();
  w.begin_object().member("dtype", "float32").member("shape", std::vector<long long>{1, 5}).end_object();
  w.begin_object().member("dtype", "none").member("shape", std::vector<long long>{}).end_object();
  w.end_array();
  w.end_object();
  std::printf("%s\n", w.text().c_str());
}
"""


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("json_writer")
    (folder / "main.cpp").write_text(PROGRAM)
    binary = folder / "main"
    subprocess.run([CXX, "-std=c++17", "-Wall", "-Werror", f"-I{SOURCE_DIR}", str(folder / "main.cpp"), "-o",
                    str(binary)], check=True, capture_output=True, text=True, timeout=300)
    return subprocess.run([str(binary)], check=True, capture_output=True, timeout=60).stdout.decode().strip()


def test_the_layout_is_the_one_the_report_has_always_had(output):
    assert output.startswith('{"text": "quote \\" backslash \\\\ newline \\u000a tab \\u0009 bell \\u0007 end"')
    assert '"ms": 1.500000, "count": 42, "big": 9007199254740993' in output
    assert '"ints": [1, 2, 3], "names": ["a", "b"], "empty_list": [], "empty_object": {}, "none": null' in output
    assert output.endswith('"nested": [{"dtype": "float32", "shape": [1, 5]}, {"dtype": "none", "shape": []}]}')


def test_python_reads_every_value_back(output):
    report = json.loads(output)
    assert report["text"] == "quote \" backslash \\ newline \n tab \t bell \a end"
    assert report["utf8"] == "café"
    assert report["big"] == 9007199254740993
    assert math.isnan(report["nan"]) and report["inf"] == math.inf and report["neg_inf"] == -math.inf
    assert report["nested"][1] == {"dtype": "none", "shape": []}
