/* The smallest program: no libc, no interpreter, exits 42. Built static, non-PIE. */
void _start(void) {
  __asm__ volatile("mov $60, %eax\n\tmov $42, %edi\n\tsyscall");
}
