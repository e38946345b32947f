output "role_arns" {
  description = "Each function's role ARN: processor, reporter, job_worker, job_results, http_api."
  value = {
    processor   = aws_iam_role.processor.arn
    reporter    = aws_iam_role.reporter.arn
    job_worker  = aws_iam_role.job_worker.arn
    job_results = aws_iam_role.job_results.arn
    http_api    = aws_iam_role.http_api.arn
  }
}
