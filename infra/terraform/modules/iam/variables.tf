variable "name_prefix" {
  type        = string
  description = "Prefix of every role name."
}

variable "queue_arns" {
  type        = map(string)
  description = "The queues module's arns output."
}

variable "table_arns" {
  type        = map(string)
  description = "The tables module's arns output."
}

variable "log_group_arns" {
  type        = map(string)
  description = "The functions module's log_group_arns output (processor, reporter, job_worker, job_results, http_api)."
}

variable "sender_email" {
  type        = string
  description = "The report's From address."
}

variable "sender_identity" {
  type        = string
  description = "The verified SES identity covering sender_email; empty means sender_email."
}

variable "recipient_email" {
  type        = string
  description = "The report's recipient (an SES identity the reporter may send to while in the sandbox)."
}
