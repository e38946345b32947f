variable "name_prefix" {
  type        = string
  description = "Prefix of every table name."
}
