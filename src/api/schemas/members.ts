import { z } from "zod";
import type { MemberView } from "../../domain/members/service.js";
import type { SameKeys } from "./common.js";

/** The shape of a team member (memberView builds it); no password or hash, ever. */
export const memberSchema = z.object({
  id: z.string().describe("numeric id as a string"),
  email: z.string(),
  firstName: z.string().nullable(),
  lastName: z.string().nullable(),
  role: z.string().nullable(),
  active: z.boolean().describe("false: deactivated"),
  hasPassword: z.boolean().describe("whether a password is set; the password and its hash are never shown"),
  createdAt: z.string().describe("ISO-8601 UTC"),
  updatedAt: z.string().describe("ISO-8601 UTC"),
});

const name = z.string().trim().max(1000).nullable();
export const updateMemberBody = z
  .object({
    firstName: name.optional(),
    lastName: name.optional(),
    role: z.string().trim().max(1000).nullable().optional(),
    active: z.boolean().optional().describe("false deactivates the member"),
    password: z.string().optional().describe("at least 6 characters (422 password_too_short), stored only as an argon2id hash"),
  })
  .strict();

const _member: SameKeys<z.output<typeof memberSchema>, MemberView> = true;
