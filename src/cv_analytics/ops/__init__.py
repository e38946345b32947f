"""Operations: status, alarms, DLQ inspection and redrive."""
