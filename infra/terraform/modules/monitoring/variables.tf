variable "name_prefix" {
  type        = string
  description = "Prefix of the topic's and the alarms' names."
}

variable "alarm_email" {
  type        = string
  description = "Address subscribed to the alarm topic; empty: no subscription."
}

variable "function_names" {
  type        = map(string)
  description = "The functions module's names output."
}

variable "queue_names" {
  type        = map(string)
  description = "The queues module's names output."
}

variable "job_request_queue_depth_threshold" {
  type        = number
  description = "The job request queue's depth alarm fires above this many waiting requests."
}

variable "table_names" {
  type        = map(string)
  description = "The tables module's names output (the dashboard's DynamoDB widgets)."
}

variable "monthly_budget_usd" {
  type        = number
  description = "The monthly cost budget in USD; alarm_email is alerted past 80% of it."
}
