import { z } from "zod";

/** A webhook target: an absolute http(s) URL without credentials in it. */
export const callbackUrlSchema = z
  .string()
  .max(2048)
  .refine(
    (v) => {
      try {
        const u = new URL(v);
        return (u.protocol === "http:" || u.protocol === "https:") && !u.username && !u.password;
      } catch {
        return false;
      }
    },
    { message: "Use an absolute http:// or https:// URL without credentials." },
  );
