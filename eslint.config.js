import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "drizzle/", "coverage/", "bench/.out/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": ["error", { allow: ["error"] }],
    },
  },
  { files: ["src/cli/**", "bench/**", "test/**"], rules: { "no-console": "off" } },
  // Tests read JSON responses loosely and let their assertions check the shape.
  { files: ["test/**"], rules: { "@typescript-eslint/no-explicit-any": "off" } },
);
