r"""Builds REPORT.md and its charts from a benchmark run and throughput results.

  python -m benchmarks.report --run_dir=results/report --throughput_dir=results/throughput \
    --output=results/REPORT.md

reads <run_dir>/results.jsonl (and scores.jsonl) of `python -m benchmarks.run`
and the <sweep>.jsonl files of `python -m benchmarks.throughput`; writes the
report and PNG charts beside it (see seqad/report_builder.py).
"""

from absl import app
from absl import flags

from seqad import report_builder

_RUN_DIR = flags.DEFINE_string('run_dir', 'results/report', 'Workdir of benchmarks.run.')
_THROUGHPUT_DIR = flags.DEFINE_string('throughput_dir', 'results/throughput',
                                      'Workdir of benchmarks.throughput ("" for none).')
_OUTPUT = flags.DEFINE_string('output', 'results/REPORT.md', 'The Markdown report.')
_FIGURES_DIR = flags.DEFINE_string(
    'figures_dir', '', 'Folder of the PNG charts (default: <output stem>_figures).')


def main(argv):
  del argv
  report_builder.build(_RUN_DIR.value, _THROUGHPUT_DIR.value or None, _OUTPUT.value,
                       _FIGURES_DIR.value or None)
  print(f'Wrote {_OUTPUT.value}.')


if __name__ == '__main__':
  app.run(main)
