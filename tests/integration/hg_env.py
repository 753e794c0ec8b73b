"""The environment the integration tests run the real hg in: plain output,
no user or system configuration, a fixed user, merges that never prompt,
the C locale and UTC, and nothing from the caller that changes hg's
behaviour (pending transactions, editors)."""

import os

HG_ENV = dict(
    os.environ,
    HGPLAIN='1',
    HGRCPATH='',
    HGUSER='test <test@example.com>',
    HGMERGE='internal:fail',
    HGENCODING='ascii',
    LC_ALL='C',
    TZ='UTC',
)
for _name in ('HG_PENDING', 'HGPLAINEXCEPT', 'HGEDITOR', 'EDITOR', 'VISUAL'):
    HG_ENV.pop(_name, None)
