"""The CV domain's job types (cv.match, cv.summary, analytics.report), registered on the jobs engine: they compose the assistant and the reporting parts."""
