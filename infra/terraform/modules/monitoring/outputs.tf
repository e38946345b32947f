output "alarm_topic_arn" {
  value = aws_sns_topic.alarms.arn
}
