r"""Fits the simulator to a Taobao-format log and writes the realism report.

  python -m benchmarks.calibrate \
    --path=../shared/data/taobao_userbehavior/UserBehavior_head_814users.csv \
    --workdir=results/realism --params_out=seqad/data/params/taobao_fitted.json

Writes into --workdir: fitted_params.json, realism.json (every statistic's distance
and tolerance) and realism.md; with --params_out, also the fitted parameters there
(how the packaged default, seqad/data/params/taobao_fitted.json, was made). With
--params_in, no fit: the report compares the log with those parameters.
"""

import os

from absl import app
from absl import flags
from absl import logging

from seqad import io
from seqad.data import calibration
from seqad.data import taobao

_PATH = flags.DEFINE_string('path', None, 'Taobao UserBehavior CSV file.', required=True)
_WORKDIR = flags.DEFINE_string('workdir', 'results/realism', 'Output folder.')
_PARAMS_OUT = flags.DEFINE_string('params_out', '', 'Also write the fit here.')
_PARAMS_IN = flags.DEFINE_string('params_in', '', 'Report on these params, no fit.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds the fit; the report simulates seed+1.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  table, load_report = taobao.load_taobao(_PATH.value)
  source = {'source': os.path.basename(_PATH.value), 'events': len(table),
            'users': int(len(table.users())), 'rows_read': load_report.rows_read}
  if _PARAMS_IN.value:
    params = calibration.load_params(_PARAMS_IN.value)
  else:
    params = calibration.fit(table, seed=_SEED.value)
  calibration.save_params(os.path.join(_WORKDIR.value, 'fitted_params.json'), params,
                          fitted_on=source)
  if _PARAMS_OUT.value:
    calibration.save_params(_PARAMS_OUT.value, params, fitted_on=source)

  report = calibration.realism_report(table, params, seed=_SEED.value + 1)
  io.write_json_atomic(os.path.join(_WORKDIR.value, 'realism.json'),
                       {k: v for k, v in report.items() if k != 'markdown'})
  text = (f"# Simulator fitted on {source['source']} vs the log itself\n\n"
          f"{source['users']} users, {source['events']} events; the simulated table "
          f"has as many users. Distances: KS for samples, total variation for "
          f"distributions (0 = identical).\n\n" + report['markdown'])
  io.write_text_atomic(os.path.join(_WORKDIR.value, 'realism.md'), text)
  print(text)
  if not report['ok']:
    logging.warning('Some statistics are outside their tolerance.')


if __name__ == '__main__':
  app.run(main)
