/** The error report's own columns (GET /v1/imports/:id/errors); the file's columns follow them. */
export const ERROR_REPORT_COLUMNS = ["row", "column", "value", "code", "message"] as const;
