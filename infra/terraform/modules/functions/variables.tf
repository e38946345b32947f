variable "name_prefix" {
  type        = string
  description = "Prefix of every function, log group and rule name."
}

variable "lambda_zip_path" {
  type        = string
  description = "The deployment package (`cv-analytics aws package`)."
}

variable "lambda_s3_bucket" {
  type        = string
  description = "The bucket holding a copy of the package at lambda_s3_key; empty: the zip is uploaded directly."
}

variable "lambda_s3_key" {
  type        = string
  description = "The package's key in lambda_s3_bucket."
}

variable "role_arns" {
  type        = map(string)
  description = "The iam module's role_arns output."
}

variable "queue_urls" {
  type        = map(string)
  description = "The queues module's urls output."
}

variable "queue_arns" {
  type        = map(string)
  description = "The queues module's arns output (the event sources)."
}

variable "table_names" {
  type        = map(string)
  description = "The tables module's names output."
}

variable "recipient_email" {
  type = string
}

variable "sender_email" {
  type = string
}

variable "api_keys" {
  type      = string
  sensitive = true
}

variable "llm_url" {
  type = string
}

variable "llm_model" {
  type = string
}

variable "llm_api_key" {
  type      = string
  sensitive = true
}

variable "schedule_expression" {
  type        = string
  description = "When the weekly report runs (EventBridge syntax, UTC)."
}
