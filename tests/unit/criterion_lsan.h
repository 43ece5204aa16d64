/*
 * criterion_lsan.h — the one LeakSanitizer suppression every Criterion suite needs:
 * Criterion 2.4.1's runner leaks some of its own bookkeeping with --jobs 2 (inside
 * libcriterion, after every test passed); only leaks whose stack is inside it are ignored.
 * Include it (directly or through a test header) from a suite's single .c file.
 */
#ifndef CAIRN_TEST_CRITERION_LSAN_H
#define CAIRN_TEST_CRITERION_LSAN_H

const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libcriterion.so\n";
}

#endif
