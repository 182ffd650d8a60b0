"""Synthetic scans of 财政项目支出绩效自评表 with exact truth, for tests and benchmarks.

Forms are drawn at random under the form's rules (:mod:`.forms`), typeset as DOCX and laid out by
LibreOffice (:mod:`.docx_render`), read back to find rows split by page breaks (:mod:`.probe`), then
rasterised and degraded like a print-and-scan (:mod:`.scan`). :mod:`.generate` ties it together and
``python -m samples.generator`` is the command line. Importing this package loads nothing heavy.
"""
