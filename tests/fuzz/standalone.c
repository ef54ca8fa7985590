/* A main() for the fuzz targets without libFuzzer: every file named on the
 * command line, and every regular file in every directory named, is fed to
 * LLVMFuzzerTestOneInput() once. This replays the seed corpora and the
 * crash-* regression inputs in every test run, with any compiler. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path) {
        FILE *f = fopen(path, "rbe");
        if (!f) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        size_t allocated = 4096, size = 0;
        uint8_t *data = malloc(allocated);
        if (!data)
                abort();
        for (;;) {
                size_t n = fread(data + size, 1, allocated - size, f);
                size += n;
                if (size < allocated)
                        break;
                allocated *= 2;
                data = realloc(data, allocated);
                if (!data)
                        abort();
        }
        int failed = ferror(f);
        fclose(f);
        if (failed) {
                fprintf(stderr, "%s: read error\n", path);
                free(data);
                return -1;
        }
        /* an exact-size copy, so ASan catches reads past the end */
        uint8_t *exact = malloc(size ? size : 1);
        if (!exact)
                abort();
        if (size)
                memcpy(exact, data, size);
        free(data);
        printf("%s (%zu bytes)\n", path, size);
        fflush(stdout);
        LLVMFuzzerTestOneInput(exact, size);
        free(exact);
        return 0;
}

static int cmp_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int run_dir(const char *dir, unsigned *count) {
        DIR *d = opendir(dir);
        if (!d) {
                fprintf(stderr, "%s: %s\n", dir, strerror(errno));
                return -1;
        }
        char **names = NULL;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                names = realloc(names, (n + 1) * sizeof *names);
                if (!names || !(names[n] = strdup(de->d_name)))
                        abort();
                n++;
        }
        closedir(d);
        qsort(names, n, sizeof *names, cmp_names);
        int r = 0;
        for (size_t i = 0; i < n; i++) {
                char path[4096];
                struct stat st;
                snprintf(path, sizeof path, "%s/%s", dir, names[i]);
                if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                        if (run_file(path) < 0)
                                r = -1;
                        else
                                (*count)++;
                }
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char **argv) {
        unsigned count = 0;
        int r = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                        r = -1;
                } else if (S_ISDIR(st.st_mode)) {
                        if (run_dir(argv[i], &count) < 0)
                                r = -1;
                } else if (run_file(argv[i]) < 0)
                        r = -1;
                else
                        count++;
        }
        printf("%u inputs replayed\n", count);
        if (count == 0) {
                fprintf(stderr, "no inputs found\n");
                return 1;
        }
        return r < 0 ? 1 : 0;
}
