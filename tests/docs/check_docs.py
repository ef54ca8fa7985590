#!/usr/bin/env python3
"""The documentation covers what the code accepts.

    check_docs.py SOURCE_ROOT SOCKHERD [SOCKHERDCTL]

- every key of the config file (the table in src/config-schema.c, as
  `sockherd --config-keys` prints it) has an entry in
  man/sockherd.conf.5.scd (a line "*key* = ...") and a line in
  examples/sockherd.conf ("key = ..." or "#key = ...");
- sockherd.conf.5.scd documents no key that the table lacks;
- its sentence "The keys ... have no command-line option" names exactly
  the keys that `sockherd --help` has no option for (besides *command*,
  the positional arguments);
- every long option that `sockherd --help` prints has an entry in
  man/sockherd.8.scd (a line starting with "*" that names "--option");
- with SOCKHERDCTL: every long option and command of `sockherdctl --help`
  has an entry in man/sockherdctl.1.scd;
- README.md lists every mutant of tests/mutants, as the rows that
  `tests/mutants/run --table` prints, and no other.

Prints each gap and exits 1 when there is one."""
import os
import re
import subprocess
import sys


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def config_keys(binary):
    """The config file's keys, from the table in src/config-schema.c, as
    the hidden `sockherd --config-keys` prints them."""
    out = subprocess.run([binary, "--config-keys"], capture_output=True, text=True, check=True).stdout
    keys = out.split()
    if len(keys) < 10 or not all(re.fullmatch(r"[a-z][a-z-]*", k) for k in keys):
        sys.exit(f"`{binary} --config-keys` printed no list of keys: {out!r}")
    return keys


def scd_entries(text):
    """The bold words that start a definition line ('*--name* _ARG_',
    '*key* = ...', '*-u, --name* _NAME_'), with their bold markup removed."""
    entries = []
    for line in text.splitlines():
        if line.startswith("*"):
            entries.append(line.replace("\\_", "_"))
    return entries


def help_long_options(binary):
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
    opts = []
    for line in out.splitlines():
        for opt in re.findall(r"(?:^|[\s,])(--[a-z][a-z0-9-]*)", line):
            if line.lstrip().startswith(("-", opt)) and opt not in opts:
                opts.append(opt)
    return out, opts


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    root, sockherd = sys.argv[1], sys.argv[2]
    ctl = sys.argv[3] if len(sys.argv) == 4 else None
    gaps = []

    keys = config_keys(sockherd)
    conf_man = read(f"{root}/man/sockherd.conf.5.scd")
    conf_entries = scd_entries(conf_man)
    example = read(f"{root}/examples/sockherd.conf")
    for key in keys:
        if not any(re.match(rf"\*{re.escape(key)}\* =", e) for e in conf_entries):
            gaps.append(f"man/sockherd.conf.5.scd: no entry '*{key}* = ...' for config key '{key}'")
        if not re.search(rf"^#?{re.escape(key)} =", example, re.M):
            gaps.append(f"examples/sockherd.conf: no line '{key} = ...' or '#{key} = ...' for config key '{key}'")
    for e in conf_entries:
        m = re.match(r"\*([a-z][a-z-]*)\* =", e)
        if m and m.group(1) not in keys:
            gaps.append(f"man/sockherd.conf.5.scd documents '{m.group(1)}', which is not a config key (sockherd --config-keys)")

    _, opts = help_long_options(sockherd)
    if len(opts) < 5:
        gaps.append(f"`{sockherd} --help` lists only {opts}: cannot read its options")
    man8 = scd_entries(read(f"{root}/man/sockherd.8.scd"))
    for opt in opts:
        if not any(re.search(rf"(^|[\s,*]){re.escape(opt)}(\*|,|\s|$)", e) for e in man8):
            gaps.append(f"man/sockherd.8.scd: no entry for option '{opt}' of `sockherd --help`")

    sentence = re.search(r"The keys (.*?) have no\s+command-line option", conf_man, re.S)
    if not sentence:
        gaps.append("man/sockherd.conf.5.scd: no sentence 'The keys ... have no command-line option'")
    else:
        said = set(re.findall(r"\*([a-z][a-z-]*)\*", sentence.group(1)))
        without = {k for k in keys if f"--{k}" not in opts and k != "command"}
        for k in sorted(without - said):
            gaps.append(f"man/sockherd.conf.5.scd: key '{k}' has no command-line option but is not in "
                        "'The keys ... have no command-line option'")
        for k in sorted(said - without):
            gaps.append(f"man/sockherd.conf.5.scd: 'The keys ... have no command-line option' names '{k}', "
                        "which has one (or is not a key)")

    checked = f"{len(keys)} config keys, {len(opts)} sockherd options"
    if ctl:
        out, ctl_opts = help_long_options(ctl)
        man1 = scd_entries(read(f"{root}/man/sockherdctl.1.scd"))
        for opt in ctl_opts:
            if not any(re.search(rf"(^|[\s,*]){re.escape(opt)}(\*|,|\s|$)", e) for e in man1):
                gaps.append(f"man/sockherdctl.1.scd: no entry for option '{opt}' of `sockherdctl --help`")
        # commands: the words indented by two spaces under "Commands:"
        # (deeper indented lines continue a description)
        block = out.split("Commands:", 1)[1].split("\n\n", 1)[0] if "Commands:" in out else ""
        commands = re.findall(r"^  ([a-z]+)\b", block, re.M)
        if not commands:
            gaps.append("`sockherdctl --help` has no 'Commands:' list to check")
        for cmd in commands:
            if not any(e.startswith(f"*{cmd}*") for e in man1):
                gaps.append(f"man/sockherdctl.1.scd: no entry for command '{cmd}' of `sockherdctl --help`")
        checked += f", {len(ctl_opts)} sockherdctl options, {len(commands)} sockherdctl commands"

    mutants = f"{root}/tests/mutants/run"
    if os.path.exists(mutants):
        table = subprocess.run([sys.executable, mutants, "--table"], capture_output=True, text=True, check=True)
        rows = [line for line in table.stdout.splitlines() if line.startswith("| `")]
        readme = read(f"{root}/README.md")
        marker = "<!-- mutants table"
        if marker not in readme:
            gaps.append(f"README.md: no '{marker}: ...' before the mutants table")
        section = readme.split(marker, 1)[-1].split("\n\n", 1)[0]
        listed = re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.M)
        for row in rows:
            if row not in readme.splitlines():
                gaps.append(f"README.md: the mutants table lacks or differs from this row (tests/mutants/run --table): {row}")
        names = {re.match(r"\| `([a-z0-9-]+)`", row).group(1) for row in rows}
        for name in listed:
            if name not in names:
                gaps.append(f"README.md lists a mutant '{name}' that tests/mutants does not have")
        checked += f", {len(rows)} mutants"

    for g in gaps:
        print(g)
    print(f"checked {checked}: {len(gaps)} gap(s)")
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main())
