"""README.md and docs/*.md: every relative link points to an existing file, the README stays a
short user guide, and it keeps the test command that `.ci/run` and users run."""
import glob
import os.path as osp
import re

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
README = osp.join(REPO, 'README.md')
MAX_README_LINES = 260
TEST_COMMAND = 'bash tools/run_tests.sh'

_FENCE = re.compile(r'^\s*(```|~~~)')
_CODE_SPAN = re.compile(r'`[^`]*`')
_LINK = re.compile(r'!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')


def markdown_files():
    return [README] + sorted(glob.glob(osp.join(REPO, 'docs', '**', '*.md'), recursive=True))


def relative_links(path):
    """(line number, target) of every relative link outside code blocks and code spans."""
    links, in_fence = [], False
    with open(path, encoding='utf-8') as f:
        for num, line in enumerate(f, 1):
            if _FENCE.match(line):
                in_fence = not in_fence
                continue
            if in_fence:
                continue
            for target in _LINK.findall(_CODE_SPAN.sub('', line)):
                if re.match(r'^[a-z][a-z0-9+.-]*:', target, re.I) or target.startswith('#'):
                    continue  # http(s), mailto, ... and anchors inside the page
                links.append((num, target.split('#')[0]))
    return links


def test_link_parser_finds_links_and_skips_code():
    import tempfile
    with tempfile.NamedTemporaryFile('w', suffix='.md', delete=False) as f:
        f.write('see [a](docs/a.md#sec) and ![img](x.png "t") and [web](https://x.org) [s](#top)\n'
                '`[not](code.md)`\n```\n[not](fenced.md)\n```\n<[b](b.md)>\n')
    try:
        assert relative_links(f.name) == [(1, 'docs/a.md'), (1, 'x.png'), (6, 'b.md')]
    finally:
        import os
        os.remove(f.name)


@pytest.mark.parametrize('path', markdown_files(), ids=lambda p: osp.relpath(p, REPO))
def test_relative_links_exist(path):
    missing = []
    for num, target in relative_links(path):
        resolved = osp.normpath(osp.join(osp.dirname(path), target))
        if osp.exists(resolved):
            continue
        missing.append(f'{osp.relpath(path, REPO)}:{num}: {target}')
    assert not missing, 'links to files that do not exist:\n' + '\n'.join(missing)


def test_readme_is_short_and_keeps_the_test_command():
    with open(README, encoding='utf-8') as f:
        text = f.read()
    lines = text.splitlines()
    assert len(lines) <= MAX_README_LINES, f'README.md has {len(lines)} lines (max {MAX_README_LINES})'
    # .ci/run calls this command, and the README tells users to run it: keep it written exactly.
    assert any(line.strip().startswith(TEST_COMMAND) for line in lines)
    with open(osp.join(REPO, '.ci', 'run'), encoding='utf-8') as f:
        assert TEST_COMMAND in f.read()
