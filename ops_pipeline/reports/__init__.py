"""Finance reports: per business date and per month, an HTML file and an XLSX workbook under
`OPS_HOME/reports/` (`build.build_day`, `build.build_month`)."""
