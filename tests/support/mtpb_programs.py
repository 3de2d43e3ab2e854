"""Hand-written MTPB programs: a correct and a deliberately wrong one per problem, one code snippet per turn.

A snippet is a `str.format` template filled with the test case's input exactly like the problem's own
prompts (so `{A}` is what the prompt shows; literal braces are doubled), or a function of the input
dict. `build_program` lays them out the way the paper's harness builds a program: the header, then for
each turn its comment followed by the code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from codegen_lsp_devtools.bench.mtpb_data import HEADER, Problem

Snippet = str | Callable[[dict], str]


@dataclass(frozen=True)
class HandProgram:
    problem_id: str
    correct: tuple[Snippet, ...]
    wrong: tuple[Snippet, ...]
    wrong_passes: frozenset[int] = frozenset()  # inputs where the wrong program happens to be right
    needs: str | None = None  # a module the program imports that may be missing (pytest.importorskip)


def _fill(snippet: Snippet, values: dict) -> str:
    return snippet(values) if callable(snippet) else snippet.format(**values)


def build_program(problem: Problem, input_index: int, snippets: tuple[Snippet, ...]) -> str:
    turns = problem.turns(input_index)
    assert len(turns) == len(snippets), f"problem {problem.id}: {len(turns)} turns, {len(snippets)} snippets"
    values = problem.inputs[input_index]
    body = "".join(f"# {turn}\n{_fill(code, values)}\n\n" for turn, code in zip(turns, snippets))
    return HEADER + body


_FIB = '''def fib(n):
    a, b = 0, 1
    for _ in range({}):
        a, b = b, a + b
    return a'''

_FIZZBUZZ = '''def fizzbuzz(n):
    if n % {a1} == 0 and n % {a2} == 0:
        return "fizzbuzz"
    if n % {a1} == 0:
        return "fizz"
    if n % {a2} == 0:
        return "buzz"
    return n'''

_INVERT = '''def invert(d):
    return {{value: key for key, value in d.items()}}'''

_SHIFT = '''def {name}(text):
    return "".join(chr((ord(c) - 97 {sign} 2) % 26 + 97) if "a" <= c <= "z" else c for c in text)'''

_TWO_SUM = '''def two_sum(numbers, target):
    for i in range(len(numbers)):
        for j in range(i + 1, len(numbers)):
            if numbers[i] + numbers[j] == target:
                return [i{plus}, j{plus}]
    return None'''

_UNIQUE = '''def is_unique(s):
    return len(set(s)) == len(s)'''

_LONGEST_UNIQUE = '''result_substring = ""
for i in range({start}, len(my_string)):
    for j in range(i + 1, len(my_string) + 1):
        if is_unique(my_string[i:j]) and j - i > len(result_substring):
            result_substring = my_string[i:j]'''

_COUNT_VALUES = '''def count_values(lst):
    counts = {{}}
    for x in lst:
        counts[x] = counts.get(x, 0) + 1
    return counts'''

HAND_PROGRAMS: tuple[HandProgram, ...] = (
    HandProgram(  # 3 Convert time (math)
        "3",
        correct=("def minutes_to_seconds(minutes):\n    return minutes * 60",
                 "def hours_to_seconds(hours):\n    return hours * 3600",
                 "print(hours_to_seconds({a1}) + minutes_to_seconds({a2}))"),
        wrong=("def minutes_to_seconds(minutes):\n    return minutes * 60 + 1",  # off by one second
               "def hours_to_seconds(hours):\n    return hours * 3600",
               "print(hours_to_seconds({a1}) + minutes_to_seconds({a2}))"),
    ),
    HandProgram(  # 4 Squared Fibonacci (math)
        "4",
        correct=(_FIB.format("n"), "def square(x):\n    return x * x", "print(square(fib({a1})))"),
        wrong=(_FIB.format("n + 1"), "def square(x):\n    return x * x", "print(square(fib({a1})))"),
        wrong_passes=frozenset({0}),  # fib(2) == fib(1)
    ),
    HandProgram(  # 5 Count negative numbers (array)
        "5",
        correct=("my_numbers = {A}", "n_neg = sum(1 for x in my_numbers if x < 0)",
                 "n_pos = sum(1 for x in my_numbers if x > 0)", "print(max(n_neg, n_pos))"),
        wrong=("my_numbers = {A}", "n_neg = sum(1 for x in my_numbers if x < 0)",
               "n_pos = sum(1 for x in my_numbers if x > 0)", "print(min(n_neg, n_pos))"),
    ),
    HandProgram(  # 6 Pandas mean (data science)
        "6",
        correct=("import pandas as pd", 'df = pd.DataFrame({{"Yes": [{a1}, {a2}], "No": [{a3}, {a4}]}})',
                 "means = df.mean()", "print(means)"),
        wrong=("import pandas as pd", 'df = pd.DataFrame({{"Yes": [{a1}, {a2}], "No": [{a3}, {a4}]}})',
               "means = df.mean(axis=1)", "print(means)"),  # per row instead of per column
        needs="pandas",
    ),
    HandProgram(  # 7 Fizz buzz (algorithm)
        "7",
        correct=(_FIZZBUZZ, "numbers = list(range({a3}, {a4} + 1))", "new_list = [fizzbuzz(n) for n in numbers]",
                 "print(new_list)"),
        wrong=(_FIZZBUZZ, "numbers = list(range({a3}, {a4}))", "new_list = [fizzbuzz(n) for n in numbers]",
               "print(new_list)"),  # end not inclusive
    ),
    HandProgram(  # 11 Invert dict (dict); the 4th turn depends on the input ("" or "inverted")
        "11",
        correct=("my_dict = dict(zip({a1}, {a2}))", _INVERT,
                 "def is_inverted(d1, d2):\n    return invert(d1) == d2",
                 lambda v: "my_dict2 = invert(my_dict)" if v["a3"] == "inverted" else "my_dict2 = dict(my_dict)",
                 "print(is_inverted(my_dict, my_dict2))"),
        wrong=("my_dict = dict(zip({a1}, {a2}))", _INVERT,
               "def is_inverted(d1, d2):\n    return d1 == d2",  # compares without inverting
               lambda v: "my_dict2 = invert(my_dict)" if v["a3"] == "inverted" else "my_dict2 = dict(my_dict)",
               "print(is_inverted(my_dict, my_dict2))"),
    ),
    HandProgram(  # 13 Longest number (math)
        "13",
        correct=("def num_len(num):\n    return len(str(abs(num)))", "my_list = {a1}",
                 "print(max(my_list, key=num_len))"),
        wrong=("def num_len(num):\n    return len(str(abs(num)))", "my_list = {a1}", "print(max(my_list))"),
        wrong_passes=frozenset({0, 2}),  # the largest number is also the longest there
    ),
    HandProgram(  # 15 Encrypt and decrypt (algorithm)
        "15",
        correct=(_SHIFT.format(name="encrypt", sign="+"), _SHIFT.format(name="decrypt", sign="-"),
                 'original_text = "{a1}"', "encrypted_text = encrypt(original_text)",
                 "restored_text = decrypt(encrypted_text)", "my_result = [restored_text, encrypted_text]",
                 "print(my_result)"),
        wrong=(_SHIFT.format(name="encrypt", sign="+"), _SHIFT.format(name="decrypt", sign="-"),
               'original_text = "{a1}"', "encrypted_text = encrypt(original_text)",
               "restored_text = decrypt(encrypted_text)", "my_result = [encrypted_text, restored_text]",
               "print(my_result)"),  # wrong order
    ),
    HandProgram(  # 19 Two-sum (algorithm)
        "19",
        correct=("numbers = {a1}\ntarget = {a2}", _TWO_SUM.format(plus=""), "print(two_sum(numbers, target))"),
        wrong=("numbers = {a1}\ntarget = {a2}", _TWO_SUM.format(plus=" + 1"), "print(two_sum(numbers, target))"),
    ),
    HandProgram(  # 27 Longer string (string)
        "27",
        correct=('a = "{A}"\nb = "{B}"', "def len_str(s):\n    return len(s)", "len_a = len_str(a)\nlen_b = len_str(b)",
                 "result = a if len_a > len_b else b", "print(result)"),
        wrong=('a = "{A}"\nb = "{B}"', "def len_str(s):\n    return len(s)", "len_a = len_str(a)\nlen_b = len_str(b)",
               "result = a if len_a < len_b else b", "print(result)"),  # the shorter one
    ),
    HandProgram(  # 29 Count vowels (string)
        "29",
        correct=('my_string = "{s}"', "my_string = my_string.lower()",
                 'n_vowels = sum(1 for c in my_string if c in "aeiou")', "print(n_vowels)"),
        wrong=('my_string = "{s}"', "lowered = my_string.lower()",
               'n_vowels = sum(1 for c in my_string if c in "aeiou")', "print(n_vowels)"),  # counts the original
        wrong_passes=frozenset({1, 3}),  # no upper-case vowels there
    ),
    HandProgram(  # 30 Factorial (math)
        "30",
        correct=("f = {n}", "numbers = list(range(1, f + 1))", "factorial = 1",
                 "for value in numbers:\n    factorial *= value", "print(factorial)"),
        wrong=("f = {n}", "numbers = list(range(1, f))", "factorial = 1",
               "for value in numbers:\n    factorial *= value", "print(factorial)"),  # off by one
        wrong_passes=frozenset({3}),  # 1! == 0!
    ),
    HandProgram(  # 35 Min-max sum (array)
        "35",
        correct=("lst = {l}", "ma = max(lst)", "mi = min(lst)", "numbers = list(range(mi, ma + 1))",
                 "print(sum(numbers))"),
        wrong=("lst = {l}", "ma = max(lst)", "mi = min(lst)", "numbers = list(range(mi, ma))",
               "print(sum(numbers))"),  # end not inclusive
    ),
    HandProgram(  # 73 Reverse string (string)
        "73",
        correct=('w1 = "{w}"', "w2 = w1[::-1]", "print(w2)"),
        wrong=('w1 = "{w}"', "w2 = w1[:0:-1]", "print(w2)"),  # loses the first character
    ),
    HandProgram(  # 99 Length encoding (string)
        "99",
        correct=('original = "{x}"',
                 "from collections import OrderedDict\ndic = OrderedDict((c, 0) for c in original)",
                 "for c in original:\n    dic[c] += 1",
                 'result = ""\nfor key, value in dic.items():\n    result += str(key) + str(value)',
                 "print(result)"),
        wrong=('original = "{x}"',
               "from collections import OrderedDict\ndic = OrderedDict((c, 0) for c in original)",
               "for c in original:\n    dic[c] += 1",
               'result = ""\nfor key, value in dic.items():\n    result += str(value) + str(key)',
               "print(result)"),  # count before letter
        wrong_passes=frozenset({4}),  # the empty string
    ),
    HandProgram(  # 104 Consecutive unique char (string)
        "104",
        correct=('my_string = "{A}"', _UNIQUE, _LONGEST_UNIQUE.format(start=0), "print(len(result_substring))"),
        wrong=('my_string = "{A}"', _UNIQUE, _LONGEST_UNIQUE.format(start=1), "print(len(result_substring))"),
        wrong_passes=frozenset({4}),  # skipping the first start still finds "a"
    ),
)

# Correct programs for the problems the paper's harness can never pass in some cases.
KNOWN_UNPASSABLE_PROGRAMS: tuple[HandProgram, ...] = (
    HandProgram(  # 41 Majority vote: gold null where the prompt asks to print 'None'
        "41",
        correct=(_COUNT_VALUES, "counts = count_values({lst})",
                 "top = max(counts, key=counts.get) if counts else None\n"
                 "if top is not None and counts[top] > len({lst}) / 2:\n    print(top)\nelse:\n    print('None')"),
        wrong=(),
    ),
    HandProgram(  # 89 Group by key: dict outputs
        "89",
        correct=("x = {x}", "mapped = [{fun}(item) for item in x]", "mapped = [str(item) for item in mapped]",
                 "results = {{key: [] for key in mapped}}",
                 "for key, value in zip(mapped, x):\n    results[key].append(value)", "print(results)"),
        wrong=(),
    ),
)
