output "names" {
  description = "Each table's name: events, interactions, reports, jobs."
  value = {
    events       = aws_dynamodb_table.events.name
    interactions = aws_dynamodb_table.interactions.name
    reports      = aws_dynamodb_table.reports.name
    jobs         = aws_dynamodb_table.jobs.name
  }
}

output "arns" {
  description = "Each table's ARN, by the same keys."
  value = {
    events       = aws_dynamodb_table.events.arn
    interactions = aws_dynamodb_table.interactions.arn
    reports      = aws_dynamodb_table.reports.arn
    jobs         = aws_dynamodb_table.jobs.arn
  }
}
