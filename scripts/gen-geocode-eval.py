#!/usr/bin/env python3
"""Generates the geocoder's evaluation set from the gazetteer, with realistic noise, one JSON case per line.

    python3 scripts/gen-geocode-eval.py > Tests/OCSSAppTests/Fixtures/geocode-eval.jsonl

Seeded (same output every run). Each case: {"form", "address", "expect"} where expect is one of
  {"county": "330106"}                  the county code (first 6 digits of the answer) must be this, routable
  {"county": "330106", "town": "330106005"}   also the township
  {"ambiguous": ["330106", "360103"]}   the text cannot tell: not routable, and the answer or its alternatives
                                        include the first code
  {"city": "330100"}                    a city-level answer with this code
  {"none": true}                        not an address: no match
Forms: full, no_province, no_city, district_only, city_only, with_township, abbreviated, pinyin, traditional,
legacy, platform_export, name_phone, homophone, non_address (5%).
pypinyin and OpenCC come from the same pinned wheels as the gazetteer (scripts/build-gazetteer.py).
"""
import json, os, random, sys

sys.path.insert(0, os.path.dirname(__file__))
import importlib.util  # noqa: E402

spec = importlib.util.spec_from_file_location("bg", os.path.join(os.path.dirname(__file__), "build-gazetteer.py"))
bg = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bg)

CACHE = os.path.join(os.environ.get("TMPDIR", "/tmp"), "ocss-gazetteer-wheels")
z = bg.fetch(CACHE)
unpack = os.path.join(CACHE, "unpacked")
z["pypinyin"].extractall(unpack)
sys.path.insert(0, unpack)
from pypinyin import lazy_pinyin  # noqa: E402

GEO = os.path.join(os.path.dirname(__file__), "..", "geodata", "gazetteer.tsv")
units, aliases, legacy_units, nations = {}, [], [], []
for line in open(GEO, encoding="utf-8"):
    if line.startswith("#"):
        continue
    f = line.rstrip("\n").split("\t")
    if f[0] == "U":
        units[f[2]] = {"level": int(f[1]), "code": f[2], "parent": f[3], "name": f[4]}
    elif f[0] == "A":
        aliases.append((f[1], f[2], f[3]))
    elif f[0] == "L":
        legacy_units.append((f[1], f[2]))
    elif f[0] == "N":
        nations.append(f[1])
nations.sort(key=lambda s: -len(s))
s2t = {}
for line in bg.read(z["opencc-python-reimplemented"], "opencc/dictionary/STCharacters.txt").splitlines():
    p = line.split("\t")
    if len(p) == 2 and len(p[0]) == 1:
        s2t[p[0]] = p[1].split(" ")[0]
homo = {}
pdict = json.loads(bg.read(z["pypinyin"], "pypinyin/pinyin_dict.json"))
import unicodedata  # noqa: E402
for cp, readings in pdict.items():
    cp = int(cp)
    if 0x4E00 <= cp <= 0x9FA5:
        first = "".join(ch for ch in unicodedata.normalize("NFD", readings.split(",")[0]) if not unicodedata.combining(ch))
        try:
            gb = chr(cp).encode("gb2312")
        except UnicodeEncodeError:
            continue
        if 0xB0 <= gb[0] <= 0xD7:  # GB2312 level 1: the 3,755 most common characters, what a typo would use
            homo.setdefault(first, []).append(chr(cp))

rng = random.Random(20261126)
children = {}
for u in units.values():
    children.setdefault(u["parent"], []).append(u)
counties = sorted((u for u in units.values() if u["level"] == 3), key=lambda u: u["code"])
name_count = {}
for u in units.values():
    if u["level"] == 3:
        name_count[u["name"]] = name_count.get(u["name"], 0) + 1


def chain(u):
    out = []
    while u:
        out.append(u)
        u = units.get(u["parent"])
    return list(reversed(out))


def short(name, level):
    sfx = {1: bg.PROV_SUFFIXES, 2: bg.CITY_SUFFIXES, 3: bg.COUNTY_SUFFIXES, 4: bg.TOWN_SUFFIXES}[level]
    s = bg.strip_suffix(name, sfx, nations)
    return s if len(s) >= 2 else name


STREETS = ["人民路", "中山路", "解放路", "建设路", "文化路", "和平路", "新华路", "胜利路", "青年路", "朝阳路", "北京路",
           "长江路", "黄河路", "东风路", "幸福路", "光明街", "府前街", "学院路", "工业大道", "滨江大道", "花园巷", "振兴路"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红梅萍鹏飞慧婷雪琳晨宇浩然子轩欣怡"


def street():
    s = rng.choice(STREETS) + f"{rng.randint(1, 999)}号"
    if rng.random() < 0.4:
        s += f"{rng.randint(1, 30)}幢{rng.randint(1, 6)}单元{rng.randint(1, 30)}0{rng.randint(1, 6)}室"
    return s


def person():
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))


def phone():
    return "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))


def names_of(c):
    ch = chain(c)
    prov = ch[0]
    city = ch[1] if len(ch) == 3 else None
    return prov, city, c


def expect_county(c):
    return {"county": c["code"]}


cases = []


def add(form, address, expect):
    cases.append({"form": form, "address": address, "expect": expect})


def pick(n, pred=lambda c: True):
    pool = [c for c in counties if pred(c)]
    return rng.sample(pool, n)


def ambiguous_within(scope_code, c):
    """Other counties with the same name under the same scope (a province, or the whole country)."""
    return [u["code"] for u in counties if u["name"] == c["name"] and u["code"] != c["code"]
            and (scope_code is None or u["code"].startswith(scope_code))]


N = 100
for c in pick(N):
    p, ci, d = names_of(c)
    add("full", p["name"] + (ci["name"] if ci else "") + d["name"] + street(), expect_county(c))
for c in pick(N):
    p, ci, d = names_of(c)
    add("no_province", (ci["name"] if ci else p["name"]) + d["name"] + street(), expect_county(c))
for c in pick(N):
    p, ci, d = names_of(c)
    others = ambiguous_within(p["code"][:2], c)
    add("no_city", p["name"] + d["name"] + street(), {"ambiguous": [c["code"]] + others} if others else expect_county(c))
for c in pick(N):
    p, ci, d = names_of(c)
    others = ambiguous_within(None, c)
    add("district_only", d["name"] + street(), {"ambiguous": [c["code"]] + others} if others else expect_county(c))
for c in pick(N, lambda c: len(chain(c)) == 3):
    p, ci, d = names_of(c)
    add("city_only", p["name"] + ci["name"] + street(), {"city": ci["code"]})
for c in pick(N, lambda c: children.get(c["code"])):
    p, ci, d = names_of(c)
    t = rng.choice(children[c["code"]])
    add("with_township", p["name"] + (ci["name"] if ci else "") + d["name"] + t["name"] + street(),
        {"county": c["code"], "town": t["code"]})
for c in pick(N):
    p, ci, d = names_of(c)
    s = short(p["name"], 1) + (short(ci["name"], 2) if ci else "") + short(d["name"], 3)
    add("abbreviated", s + street(), expect_county(c))
for c in pick(N, lambda c: len(chain(c)) == 3):
    p, ci, d = names_of(c)

    def py(name, level):
        return "".join(x.capitalize() for x in lazy_pinyin(short(name, level)))
    kind = {"区": "District", "县": "County", "市": "City", "旗": "Banner"}.get(d["name"][-1], "")
    road = "".join(x.capitalize() for x in lazy_pinyin(rng.choice(STREETS)[:-1]))
    add("pinyin", f"No. {rng.randint(1, 999)} {road} Road, {py(d['name'], 3)} {kind}, {py(ci['name'], 2)}, "
        f"{py(p['name'], 1)}, China", expect_county(c))
for c in pick(N):
    p, ci, d = names_of(c)
    s = p["name"] + (ci["name"] if ci else "") + d["name"] + street()
    add("traditional", "".join(s2t.get(ch, ch) for ch in s), expect_county(c))
legacy_pool = [(units[code], name) for code, name, kind in aliases if kind == "legacy" and code in units
               and units[code]["level"] == 3] + [(units[code], name) for code, name in legacy_units]
legacy_count = {}
for u, n in legacy_pool:
    legacy_count[n] = legacy_count.get(n, 0) + 1
# Names that would be ambiguous even to a person are left out: two-character ones (南区, 郊区) and names that
# more than one unit bore (枝城市).
legacy_pool = [(u, n) for u, n in legacy_pool
               if len(n) >= 3 and legacy_count[n] == 1 and not any(k["name"] == n for k in children.get(u["parent"], []))]
for u, old in rng.sample(legacy_pool, min(N, len(legacy_pool))):
    p, ci, d = names_of(u)
    add("legacy", p["name"] + (ci["name"] if ci else "") + old + street(), expect_county(u))
for c in pick(N):
    p, ci, d = names_of(c)
    parts = [p["name"], ci["name"] if ci else p["name"], d["name"], street()]
    if rng.random() < 0.3:
        parts.append(f"({rng.randint(100000, 999999)})")
    add("platform_export", " ".join(parts), expect_county(c))
for c in pick(N):
    p, ci, d = names_of(c)
    addr = p["name"] + (ci["name"] if ci else "") + d["name"] + street()
    fmt = rng.choice(["{n} {t} {a}", "收货人:{n},电话:{t},地址:{a}", "{a} {n} {t}", "{n}，{t}，{a}"])
    add("name_phone", fmt.format(n=person(), t=phone(), a=addr), expect_county(c))
# Homophone typos: one character of the county name replaced by another with the same reading, where the result
# is no other unit's name.
all_names = {u["name"] for u in units.values()}
made = 0
for c in rng.sample(counties, len(counties)):
    if made >= N:
        break
    p, ci, d = names_of(c)
    base = short(d["name"], 3)
    if len(base) < 2:
        continue
    i = rng.randrange(len(base))
    reading = lazy_pinyin(base[i])[0]
    subs = [x for x in homo.get(reading, []) if x != base[i]]
    if not subs:
        continue
    typo = base[:i] + rng.choice(subs) + base[i + 1:] + d["name"][len(base):]
    if typo in all_names or any(typo.startswith(n) for n in all_names if len(n) >= 2 and n in typo):
        continue
    add("homophone", p["name"] + (ci["name"] if ci else "") + typo + street(), expect_county(c))
    made += 1
NON = ["今天天气不错我们去公园散步吧", "请尽快发货谢谢", "12345678", "测试订单请勿发货", "asdfghjkl qwerty",
       "10 Downing Street, London, United Kingdom", "1600 Amphitheatre Parkway, Mountain View, United States",
       "Rue de Rivoli 75001 Paris France", "Tokyo Chiyoda 1-1, Japan", "Unter den Linden 77, Berlin, Germany",
       "好评返现", "到付", "无", "N/A", "———", "买二送一活动", "周末送货", "送到门卫室", "电话联系", "放快递柜"]
target = len(cases) * 5 // 95 + 1
for i in range(target):
    s = NON[i % len(NON)]
    if i >= len(NON):
        s = s + " " + str(rng.randint(1, 99999))
    add("non_address", s, {"none": True})

for case in cases:
    print(json.dumps(case, ensure_ascii=False))
print(f"eval: {len(cases)} cases", file=sys.stderr)
