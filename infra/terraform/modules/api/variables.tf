variable "name_prefix" {
  type        = string
  description = "Prefix of the API's and its access log's names."
}

variable "http_api_function_arn" {
  type        = string
  description = "The web app's function (the integration's target)."
}

variable "http_api_function_name" {
  type        = string
  description = "The same function's name (for the invoke permission)."
}

variable "analytics_queue_arn" {
  type        = string
  description = "The analytics queue, which the producer policy lets the chatbot send to."
}
